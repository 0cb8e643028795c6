"""The learner's pages (HTMX + Jinja2) and the feedback stream: routes only. They read from
chat and feedback over gRPC, build view models (views.py) and render templates."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from redis.exceptions import RedisError
from sse_starlette import EventSourceResponse, ServerSentEvent
from workplace.chat.v1 import chat_pb2, chat_pb2_grpc
from workplace.feedback.v1 import emotion_pb2, feedback_pb2, feedback_pb2_grpc
from workplace_kit.errors import InvalidInput

from .feedback_fanout import FeedbackFanout
from .settings import WebSettings
from .ui_text import COOKIE, LANGUAGES, TEXT, pick_language
from .views import chat_options_view, feedback_view

log = logging.getLogger(__name__)


def build_router(
    settings: WebSettings,
    templates: Jinja2Templates,
    chat: chat_pb2_grpc.ChatServiceStub,
    feedback: feedback_pb2_grpc.FeedbackServiceStub,
    fanout: FeedbackFanout,
) -> APIRouter:
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(request: Request) -> HTMLResponse:
        lang = pick_language(request)
        text = TEXT[lang]
        # The characters, situations and length limit are chat's (its content and settings).
        options: dict[str, Any] = {"situations": [], "partners": [], "max_message_chars": 0}
        notice = ""
        try:
            reply = await chat.GetOptions(chat_pb2.GetOptionsRequest(), timeout=settings.web_grpc_timeout_s)
            options = chat_options_view(reply, lang)
        except grpc.aio.AioRpcError:
            log.warning("chat service unreachable for GetOptions", exc_info=True)
            notice = text["chat_unreachable"]
        response = templates.TemplateResponse(
            request,
            "index.html",
            {
                "lang": lang,
                "t": text,
                # Read by chat.js; "<" escaped so the JSON can never close its <script> element.
                "ui_text": json.dumps(text, ensure_ascii=False).replace("<", "\\u003c"),
                **options,
                "notice": notice,
                "chat_api_url": settings.web_chat_api_url,
            },
        )
        if request.query_params.get("lang") in LANGUAGES:
            response.set_cookie(COOKIE, lang, samesite="lax", max_age=365 * 24 * 3600)
        return response

    @router.get("/events/sessions/{session_id}/feedback", include_in_schema=False)
    async def feedback_stream(session_id: str, request: Request) -> EventSourceResponse:
        """SSE: the analyses already stored for the session, then each new one as it arrives."""
        lang = pick_language(request)
        try:
            uuid.UUID(session_id)
        except ValueError:
            raise InvalidInput("session_id is not a valid id", field="session_id") from None
        template = templates.get_template("_feedback_card.html")

        seen: set[str] = set()
        notified: list[bool] = []  # the "feedback unreachable" notice is sent once

        def card(turn_id: str, learner_text: str, analysis: emotion_pb2.EmotionAnalysis) -> ServerSentEvent:
            seen.add(turn_id)
            html = template.render(card=feedback_view(turn_id, learner_text, analysis, lang), t=TEXT[lang])
            return ServerSentEvent(html, event="feedback")

        async def stored() -> AsyncIterator[ServerSentEvent]:
            """The session's stored analyses not sent yet (all of them on a first connect)."""
            try:
                reply = await feedback.ListSessionAnalyses(
                    feedback_pb2.ListSessionAnalysesRequest(session_id=session_id),
                    timeout=settings.web_grpc_timeout_s,
                )
            except grpc.aio.AioRpcError:
                log.warning("feedback service unreachable", exc_info=True)
                if not notified:
                    notified.append(True)
                    notice = {"message": TEXT[lang]["feedback_unreachable"]}
                    yield ServerSentEvent(json.dumps(notice, ensure_ascii=False), event="notice")
                return
            for a in reply.analyses:
                if a.turn_id not in seen:
                    yield card(a.turn_id, a.learner_text, a.analysis)

        async def events() -> AsyncIterator[ServerSentEvent]:
            while True:
                try:
                    # Subscribe first, then read what is stored, so nothing falls between the two.
                    async with fanout.listen(session_id) as live:
                        async for sse in stored():
                            yield sse
                        async for event in live:
                            if event is not None and event.turn_id not in seen:
                                yield card(event.turn_id, "", event.analysis)
                except RedisError:
                    log.warning("Redis unavailable; reading stored feedback every %ss", settings.web_feedback_poll_s)
                # Without the live channel: read what is stored until Redis answers again.
                while True:
                    async for sse in stored():
                        yield sse
                    await asyncio.sleep(settings.web_feedback_poll_s)
                    if await fanout.available():
                        break

        return EventSourceResponse(events(), ping=15, headers={"X-Accel-Buffering": "no"})

    return router
