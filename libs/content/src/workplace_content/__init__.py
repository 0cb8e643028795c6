"""The authored catalogue every service plays from: characters (free chat, scenarios, watch,
speech) and scenarios, as YAML in this package, validated on load."""

from .catalogue import CONTENT_ROOT, FREE_CHAT_DIR, ContentCatalogue, ContentError, content, load_content
from .model import Category, Character, Criterion, Move, Scenario

__all__ = [
    "CONTENT_ROOT",
    "FREE_CHAT_DIR",
    "Category",
    "Character",
    "ContentCatalogue",
    "ContentError",
    "Criterion",
    "Move",
    "Scenario",
    "content",
    "load_content",
]
