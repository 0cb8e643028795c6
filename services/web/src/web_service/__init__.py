"""web service."""
