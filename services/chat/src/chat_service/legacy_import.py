"""The free chat of a legacy (Flask) session, handed over by auth (event LegacyChatHistory on
legacy.chat-histories), becomes one of the learner's chat sessions: every exchange, in order,
with the times the legacy app gave them.

Once per event (the inbox, in the same transaction as the session), and once per session: the
session and turn ids are derived from the event's, so a second event for the same legacy
session adds nothing. The legacy app's partners and situations are mapped onto this
catalogue's; one it does not have becomes its first (the words are kept either way). Legacy
turns are not sent to feedback: they were never analysed, and a cut-over must not flood it.
"""

from __future__ import annotations

import uuid
from datetime import UTC

from workplace.events.v1 import events_pb2
from workplace_kit.ai.offline_dialogue import Catalogue
from workplace_kit.bus import Envelope, Handled, PermanentFailure

from .repository import ChatRepository, ImportedMessage, Session

SUBSCRIPTION = "chat.legacy-chat-histories"
# Legacy situations under another name here.
SITUATION_ALIASES = {"evening": "after_work"}
# The legacy app's replies are marked as such in the history (engine_id).
LEGACY_ENGINE = "legacy"


class LegacyChatImport:
    def __init__(self, repository: ChatRepository, catalogue: Catalogue, *, consumer: str = SUBSCRIPTION):
        self.repository = repository
        self.catalogue = catalogue
        self.situations = [s.id for s in catalogue.situations]
        self.consumer = consumer

    def _partner(self, legacy: str) -> str:
        return legacy if legacy in self.catalogue.partners else self.catalogue.partners[0]

    def _situation(self, legacy: str) -> str:
        situation = SITUATION_ALIASES.get(legacy, legacy)
        return situation if situation in self.situations else self.situations[0]

    async def handle(self, event: events_pb2.LegacyChatHistory, envelope: Envelope | None = None) -> Handled:
        event_id = envelope.event_id if envelope is not None else event.event_id
        if not event_id or not event.user_id:
            raise PermanentFailure("the legacy chat history has no event_id or user_id")
        try:
            session_id = uuid.UUID(event.session_id)
        except ValueError:
            raise PermanentFailure("the legacy chat history's session_id is not a UUID") from None
        messages: list[ImportedMessage] = []
        for index, exchange in enumerate(event.exchanges):
            at = exchange.occurred_at.ToDatetime(tzinfo=UTC) if exchange.HasField("occurred_at") else None
            for offset, role, text, engine in (
                (0, "user", exchange.learner_text, ""),
                (1, "model", exchange.reply_text, LEGACY_ENGINE),
            ):
                turn_id = uuid.uuid5(session_id, str(2 * index + offset))
                messages.append(ImportedMessage(turn_id, role, text, engine, at))
        session = Session(
            session_id, event.user_id, self._partner(event.partner), self._situation(event.situation), None
        )
        last = max((m.created_at for m in messages if m.created_at), default=None)
        stored = await self.repository.import_history(
            session,
            messages,
            consumer=self.consumer,
            event_id=event_id,
            updated_at=last or (event.occurred_at.ToDatetime(tzinfo=UTC) if event.HasField("occurred_at") else None),
        )
        return Handled.OK if stored else Handled.DUPLICATE
