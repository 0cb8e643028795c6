"""Shared kit for every workplace service."""
