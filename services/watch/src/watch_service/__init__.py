"""watch service."""
