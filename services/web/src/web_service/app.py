"""The learner's pages (HTMX + Jinja2). Reads from chat and feedback over gRPC, streams
feedback to the browser by SSE."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import grpc
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from redis.exceptions import RedisError
from sse_starlette import EventSourceResponse, ServerSentEvent
from workplace.chat.v1 import chat_pb2, chat_pb2_grpc
from workplace.events.v1 import events_pb2
from workplace.feedback.v1 import emotion_pb2, feedback_pb2, feedback_pb2_grpc
from workplace_kit.emotions import emotion_label
from workplace_kit.errors import InvalidInput
from workplace_kit.grpc_client import create_channel
from workplace_kit.resources import open_resources
from workplace_kit.service import ServiceParts, create_http_app
from workplace_kit.workers import pubsub_consumer

from .feedback_fanout import FeedbackFanout
from .settings import WebSettings
from .ui_text import COOKIE, LANGUAGES, TEXT, pick_language

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


ANALYSER_LABELS = {
    "ja": {
        "offline:mlask+oseti": "オフライン分析（ML-Ask・oseti）",
        "offline:vader+lexicon": "オフライン分析（VADER・感情語辞書）",
    },
    "en": {
        "offline:mlask+oseti": "offline analysis (ML-Ask, oseti)",
        "offline:vader+lexicon": "offline analysis (VADER, emotion lexicon)",
    },
}


def analyser_label(engine: str, lang: str = "ja") -> str:
    """A readable name for the engine that analysed a turn ("gemini:<model>" → "Gemini (<model>)")."""
    if engine.startswith("gemini:"):
        model = engine.split(":", 1)[1]
        return f"Gemini（{model}）" if lang == "ja" else f"Gemini ({model})"
    return ANALYSER_LABELS[lang].get(engine, engine)


def feedback_view(turn_id: str, learner_text: str, analysis: emotion_pb2.EmotionAnalysis, lang: str = "ja") -> dict:
    scores = sorted(((s.emotion, s.score) for s in analysis.scores), key=lambda x: -x[1])
    return {
        "turn_id": turn_id,
        "learner_text": learner_text,
        "dominant": analysis.dominant_emotion,
        "dominant_label": emotion_label(analysis.dominant_emotion, lang),
        "polarity": analysis.polarity,
        "polarity_pct": int(round((analysis.polarity + 1) * 50)),
        "scores": [(emotion_label(e, lang), int(round(s * 100))) for e, s in scores[:3]],
        "summary": analysis.summary,
        "engine": analyser_label(analysis.engine, lang),
    }


# The subscription it reads (declared in workplace_kit.topology).
FEEDBACK_SUBSCRIPTION = "web.feedback-ready"


async def build(stack: AsyncExitStack, settings: WebSettings) -> ServiceParts:
    res = await open_resources(stack, settings, redis=True)
    assert res.redis is not None
    chat_channel = create_channel(settings.web_chat_grpc_addr)
    stack.push_async_callback(chat_channel.close)
    feedback_channel = create_channel(settings.web_feedback_grpc_addr)
    stack.push_async_callback(feedback_channel.close)
    chat = chat_pb2_grpc.ChatServiceStub(chat_channel)
    feedback = feedback_pb2_grpc.FeedbackServiceStub(feedback_channel)
    fanout = FeedbackFanout(res.redis)
    templates = Jinja2Templates(directory=HERE / "templates")

    # No readiness checks beyond the process itself: pages render without Redis (feedback then
    # arrives by polling) and a down chat service is shown as a notice on the page.
    app = create_http_app(settings, title="Workplace Roleplay web")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(request: Request) -> HTMLResponse:
        lang = pick_language(request)
        text = TEXT[lang]
        # The characters, situations and length limit are chat's (its content and settings).
        situations: list[dict[str, str]] = []
        partners: list[tuple[str, str]] = []
        max_message_chars, notice = 0, ""
        try:
            options = await chat.GetOptions(chat_pb2.GetOptionsRequest(), timeout=settings.web_grpc_timeout_s)
            situations = [
                {
                    "id": s.id,
                    "title": s.title_ja if lang == "ja" else s.title_en,
                    "description": s.description_ja if lang == "ja" else s.description_en,
                }
                for s in options.situations
            ]
            partners = [(c.id, c.label_ja if lang == "ja" else c.label_en) for c in options.characters]
            max_message_chars = options.max_message_chars
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
                "situations": situations,
                "partners": partners,
                "max_message_chars": max_message_chars,
                "notice": notice,
                "chat_api_url": settings.web_chat_api_url,
            },
        )
        if request.query_params.get("lang") in LANGUAGES:
            response.set_cookie(COOKIE, lang, samesite="lax", max_age=365 * 24 * 3600)
        if not request.cookies.get("wp_guest"):
            # A guest id until the auth service issues real accounts.
            response.set_cookie("wp_guest", "guest-" + uuid.uuid4().hex[:16], samesite="lax", httponly=False)
        return response

    @app.get("/events/sessions/{session_id}/feedback", include_in_schema=False)
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

    consumer = pubsub_consumer(res.bus, FEEDBACK_SUBSCRIPTION, events_pb2.FeedbackReady, fanout.on_feedback_ready)
    return ServiceParts(http_app=app, workers=[consumer])
