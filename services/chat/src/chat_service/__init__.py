"""chat service."""
