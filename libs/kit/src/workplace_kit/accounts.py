"""What an account's fields may hold: the auth service enforces these, the pages say them
(and set them on their inputs) so a learner learns the rule before the server refuses."""

from __future__ import annotations

PASSWORD_MIN_CHARS = 10
PASSWORD_MAX_CHARS = 256
DISPLAY_NAME_MAX_CHARS = 40
EMAIL_MAX_CHARS = 254  # RFC 5321's limit on a forward path, less its angle brackets
