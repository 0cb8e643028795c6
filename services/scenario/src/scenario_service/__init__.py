"""scenario service."""
