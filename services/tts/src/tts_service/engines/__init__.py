"""Speech engines: each turns text into PCM for one voice. Offline engines run here with no
download (Open JTalk, Kokoro, Piper); Gemini speech runs when credentials are set."""
