"""Loaded by the schemathesis CLI (SCHEMATHESIS_HOOKS): request bodies of audio types (the TTS
service's voice input) are sent as raw bytes, as application/octet-stream is."""

import schemathesis

schemathesis.serializer.alias(
    ["audio/webm", "audio/ogg", "audio/wav", "audio/mpeg", "audio/mp4"], "application/octet-stream"
)
