"""AI clients: Gemini through google-genai, and the offline engines used when no key is set."""
