"""The learner's pages (HTMX + Jinja2) and the feedback stream: routes only. They read from
chat and feedback over gRPC, build view models (views.py) and render templates."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from redis.exceptions import RedisError
from sse_starlette import EventSourceResponse, ServerSentEvent
from workplace.chat.v1 import chat_pb2, chat_pb2_grpc
from workplace.feedback.v1 import emotion_pb2, feedback_pb2, feedback_pb2_grpc
from workplace_kit.accounts import DISPLAY_NAME_MAX_CHARS, EMAIL_MAX_CHARS, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS
from workplace_kit.auth import InvalidToken, Principal, TokenVerifier, Unauthenticated, bearer_token
from workplace_kit.errors import InvalidInput, NotFound
from workplace_kit.web_security import CSRF_COOKIE_NAME, CSRF_HEADER_NAME, ensure_csrf_cookie

from .feedback_fanout import FeedbackFanout
from .settings import WebSettings
from .ui_text import COOKIE, LANGUAGES, TEXT, pick_language
from .views import chat_options_view, feedback_view

log = logging.getLogger(__name__)
# A scenario id as the catalogue spells them (the scenario service checks the same pattern).
SCENARIO_ID = re.compile(r"[a-z][a-z0-9_-]{1,62}")


def language_switch_href(request: Request, other: str) -> str:
    """The page itself in the other language: its path and query, `lang` replaced (a chat
    page's ?session=… stays; the page's script keeps the link up to date as the URL changes)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"] + [("lang", other)]
    return f"{request.url.path}?{urlencode(query)}"


def build_router(
    settings: WebSettings,
    templates: Jinja2Templates,
    chat: chat_pb2_grpc.ChatServiceStub,
    feedback: feedback_pb2_grpc.FeedbackServiceStub,
    fanout: FeedbackFanout,
    verifier: TokenVerifier,
) -> APIRouter:
    router = APIRouter()

    async def signed_in(request: Request) -> tuple[Principal, str]:
        """The learner of the request's access token (the page's HttpOnly cookie, or a Bearer
        header) and the token itself, to act for them towards feedback; 401 without a valid one."""
        try:
            token = bearer_token(request.headers.get("authorization"), request.cookies.get(settings.auth_cookie_name))
            return await verifier.verify(token), token
        except InvalidToken as exc:
            log.debug("access token refused: %s", exc.reason)
            raise Unauthenticated(reason=exc.reason) from None

    def render_page(request: Request, template: str, lang: str, context: dict[str, Any]) -> HTMLResponse:
        """A page in `lang` with what every page has: its wording (also for its script), the
        CSRF cookie and the names csrf.js needs, and the learner's language choice kept."""
        text = TEXT[lang]
        response = templates.TemplateResponse(
            request,
            template,
            {
                "lang": lang,
                "t": text,
                # Read by the page's script; "<" escaped so the JSON can never close its <script> element.
                "ui_text": json.dumps(text, ensure_ascii=False).replace("<", "\\u003c"),
                # Where csrf.js finds the token to send back with state-changing requests.
                "csrf_cookie": CSRF_COOKIE_NAME,
                "csrf_header": CSRF_HEADER_NAME,
                "lang_switch_href": language_switch_href(request, text["switch_lang"]),
                # Where speech.js and voice_input.js find the TTS service.
                "tts_api_url": settings.web_tts_api_url,
                **context,
            },
        )
        ensure_csrf_cookie(request, response, settings)
        if request.query_params.get("lang") in LANGUAGES:
            response.set_cookie(COOKIE, lang, samesite="lax", max_age=365 * 24 * 3600)
        return response

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
        return render_page(
            request,
            "index.html",
            lang,
            {**options, "notice": notice, "chat_api_url": settings.web_chat_api_url},
        )

    @router.get("/account", response_class=HTMLResponse, include_in_schema=False)
    async def account(request: Request) -> HTMLResponse:
        """Who the learner is, and for a guest the forms to keep their practice (create an
        account) or to log in; for an account, log out. The page's script reads the learner
        from auth (/api/v2/auth/me, the HttpOnly cookie going along): only it can renew an
        expired sign-in, whose refresh cookie is sent to auth alone."""
        context = {
            "google_sign_in": settings.web_google_sign_in_enabled,
            "password_min": PASSWORD_MIN_CHARS,
            "password_max": PASSWORD_MAX_CHARS,
            "name_max": DISPLAY_NAME_MAX_CHARS,
            "email_max": EMAIL_MAX_CHARS,
        }
        return render_page(request, "account.html", pick_language(request), context)

    @router.get("/scenarios", response_class=HTMLResponse, include_in_schema=False)
    async def scenarios(request: Request) -> HTMLResponse:
        """The scenario catalogue: category chips, a difficulty filter and a search by meaning.
        The page's script reads the catalogue from the scenario service through the gateway
        (signed in as the free-chat page is), so the filters never reload the page."""
        context = {"scenario_api_url": settings.web_scenario_api_url}
        return render_page(request, "scenarios.html", pick_language(request), context)

    @router.get("/scenarios/{scenario_id}", response_class=HTMLResponse, include_in_schema=False)
    async def scenario_briefing(scenario_id: str, request: Request) -> HTMLResponse:
        """One scenario's briefing and the start button (with the consent box where it asks
        for one); an unknown id is said on the page, a malformed one is a 404 here."""
        if not SCENARIO_ID.fullmatch(scenario_id):
            raise NotFound("no such scenario")
        context = {"scenario_api_url": settings.web_scenario_api_url, "scenario_id": scenario_id}
        return render_page(request, "scenario.html", pick_language(request), context)

    @router.get("/roleplay/{session_id}", response_class=HTMLResponse, include_in_schema=False)
    async def roleplay(session_id: str, request: Request) -> HTMLResponse:
        """A roleplay session: its conversation so far (read by the page's script, so a reload
        or a shared link shows it again), the message box and the live feedback panel."""
        try:
            session_id = str(uuid.UUID(session_id))
        except ValueError:
            raise NotFound("no such roleplay") from None
        context = {"scenario_api_url": settings.web_scenario_api_url, "session_id": session_id}
        return render_page(request, "roleplay.html", pick_language(request), context)

    @router.get("/watch", response_class=HTMLResponse, include_in_schema=False)
    async def watch_start(request: Request) -> HTMLResponse:
        """Pick what two AI characters act out (a scenario, ?scenario= preselects one, or a topic
        in the learner's words) and the pace; the page's script starts the dialogue."""
        wanted = request.query_params.get("scenario", "")
        context = {
            "watch_api_url": settings.web_watch_api_url,
            "scenario_api_url": settings.web_scenario_api_url,
            "scenario_id": wanted if SCENARIO_ID.fullmatch(wanted) else "",
        }
        return render_page(request, "watch.html", pick_language(request), context)

    @router.get("/watch/{watch_id}", response_class=HTMLResponse, include_in_schema=False)
    async def watch_dialogue(watch_id: str, request: Request) -> HTMLResponse:
        """A watched dialogue: its turns stream in (a reload shows them again), with pause,
        pace, stop, the learner's own line, speech, and what to notice at the end."""
        try:
            watch_id = str(uuid.UUID(watch_id))
        except ValueError:
            raise NotFound("no such conversation") from None
        context = {"watch_api_url": settings.web_watch_api_url, "watch_id": watch_id}
        return render_page(request, "watch_dialogue.html", pick_language(request), context)

    # The learner's progress: pages whose scripts read feedback's reports, journal and strengths
    # through the gateway (signed in as the practice pages are).
    progress_context = {
        "feedback_api_url": settings.web_feedback_api_url,
        "scenario_api_url": settings.web_scenario_api_url,
    }

    @router.get("/report/{session_id}", response_class=HTMLResponse, include_in_schema=False)
    async def report(session_id: str, request: Request) -> HTMLResponse:
        """The coaching report of an ended session (free chat or roleplay). It is written a few
        seconds after the session ends: the page shows its progress until then."""
        try:
            session_id = str(uuid.UUID(session_id))
        except ValueError:
            raise NotFound("no such report") from None
        context = {**progress_context, "session_id": session_id}
        return render_page(request, "report.html", pick_language(request), context)

    def session_param(request: Request, name: str) -> str:
        """A session id from the query, normalised; "" when it is missing or not an id."""
        try:
            return str(uuid.UUID(request.query_params.get(name, "")))
        except ValueError:
            return ""

    @router.get("/compare", response_class=HTMLResponse, include_in_schema=False)
    async def compare(request: Request) -> HTMLResponse:
        """Two attempts side by side (?before=&after= session ids); without both, the page says
        how to pick them."""
        context = {
            **progress_context,
            "before": session_param(request, "before"),
            "after": session_param(request, "after"),
        }
        return render_page(request, "compare.html", pick_language(request), context)

    @router.get("/journal", response_class=HTMLResponse, include_in_schema=False)
    async def journal(request: Request) -> HTMLResponse:
        """Every ended session, newest first, each opening its report and its transcript."""
        return render_page(request, "journal.html", pick_language(request), progress_context)

    @router.get("/strengths", response_class=HTMLResponse, include_in_schema=False)
    async def strengths(request: Request) -> HTMLResponse:
        """The skills over time (a chart), the strongest, and what to practise next."""
        return render_page(request, "strengths.html", pick_language(request), progress_context)

    @router.get("/events/sessions/{session_id}/feedback", include_in_schema=False)
    async def feedback_stream(session_id: str, request: Request) -> EventSourceResponse:
        """SSE: the analyses already stored for the learner's session, then each new one as it
        arrives. For the learner of the access token only: without a valid one the answer is a
        401, for another learner's session a 404, both before anything streams."""
        lang = pick_language(request)
        try:
            uuid.UUID(session_id)
        except ValueError:
            raise InvalidInput("session_id is not a valid id", field="session_id") from None
        principal, token = await signed_in(request)
        # Feedback checks the token again and answers only with this learner's analyses.
        as_learner = (("authorization", f"Bearer {token}"),)
        list_request = feedback_pb2.ListSessionAnalysesRequest(session_id=session_id)
        template = templates.get_template("_feedback_card.html")

        def refused(exc: grpc.aio.AioRpcError) -> NotFound | Unauthenticated | None:
            """Feedback's answer when the analyses are not this learner's to read (None otherwise)."""
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return NotFound("no such session")
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                return Unauthenticated(reason="expired")
            return None

        # Ask feedback before streaming: another learner's session is a 404, not an empty
        # stream. A session id with no analyses yet is answered with an empty list, whoever
        # asks (feedback cannot tell whose it is: sessions are chat's); so live analyses are
        # passed on only when they are this learner's (their user_id is the token's subject).
        first: feedback_pb2.ListSessionAnalysesResponse | None = None
        try:
            first = await feedback.ListSessionAnalyses(
                list_request, metadata=as_learner, timeout=settings.web_grpc_timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            error = refused(exc)
            if error is not None:
                raise error from None
            log.warning("feedback service unreachable", exc_info=True)

        seen: set[str] = set()
        notified: list[bool] = []  # the "feedback unreachable" notice is sent once

        class StreamEnds(Exception):
            """Feedback no longer answers for this learner (the token ran out): the stream ends,
            and the browser's reconnection is answered 401 or 404 before streaming."""

        def card(turn_id: str, learner_text: str, analysis: emotion_pb2.EmotionAnalysis) -> ServerSentEvent:
            seen.add(turn_id)
            html = template.render(card=feedback_view(turn_id, learner_text, analysis, lang), t=TEXT[lang])
            return ServerSentEvent(html, event="feedback")

        def notice() -> list[ServerSentEvent]:
            if notified:
                return []
            notified.append(True)
            body = {"message": TEXT[lang]["feedback_unreachable"]}
            return [ServerSentEvent(json.dumps(body, ensure_ascii=False), event="notice")]

        def token_expired() -> bool:
            # A stream lasts no longer than the token it was opened with: the browser reconnects
            # with a fresh one (the page signs in again when the stream is refused).
            return datetime.now(UTC) >= principal.expires_at

        async def stored() -> AsyncIterator[ServerSentEvent]:
            """The session's stored analyses not sent yet (all of them on a first connect)."""
            try:
                reply = await feedback.ListSessionAnalyses(
                    list_request, metadata=as_learner, timeout=settings.web_grpc_timeout_s
                )
            except grpc.aio.AioRpcError as exc:
                if refused(exc) is not None:
                    raise StreamEnds from None
                log.warning("feedback service unreachable", exc_info=True)
                for sse in notice():
                    yield sse
                return
            for a in reply.analyses:
                if a.turn_id not in seen:
                    yield card(a.turn_id, a.learner_text, a.analysis)

        async def follow() -> AsyncIterator[ServerSentEvent]:
            if first is None:
                for sse in notice():
                    yield sse
            else:
                for a in first.analyses:
                    yield card(a.turn_id, a.learner_text, a.analysis)
            while True:
                try:
                    # Subscribe first, then read what is stored, so nothing falls between the two.
                    async with fanout.listen(session_id) as live:
                        async for sse in stored():
                            yield sse
                        async for event in live:
                            if token_expired():
                                return
                            if event is not None and event.user_id == principal.user_id and event.turn_id not in seen:
                                yield card(event.turn_id, "", event.analysis)
                except RedisError:
                    log.warning("Redis unavailable; reading stored feedback every %ss", settings.web_feedback_poll_s)
                # Without the live channel: read what is stored until Redis answers again.
                while True:
                    async for sse in stored():
                        yield sse
                    await asyncio.sleep(settings.web_feedback_poll_s)
                    if token_expired():
                        return
                    if await fanout.available():
                        break

        async def events() -> AsyncIterator[ServerSentEvent]:
            try:
                async for sse in follow():
                    yield sse
            except StreamEnds:
                return

        return EventSourceResponse(events(), ping=15, headers={"X-Accel-Buffering": "no"})

    return router
