"""Wire the web service: Redis, the gRPC clients of chat and feedback, the pages, and the
feedback.ready consumer that feeds the browsers' streams."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from workplace.chat.v1 import chat_pb2_grpc
from workplace.events.v1 import events_pb2
from workplace.feedback.v1 import feedback_pb2_grpc
from workplace_kit.auth import TokenVerifier
from workplace_kit.grpc_client import create_channel
from workplace_kit.resources import open_resources
from workplace_kit.service import ServiceParts, create_http_app
from workplace_kit.workers import pubsub_consumer

from .feedback_fanout import FeedbackFanout
from .pages import build_router
from .settings import WebSettings

HERE = Path(__file__).parent
# The subscription it reads (declared in workplace_kit.topology).
FEEDBACK_SUBSCRIPTION = "web.feedback-ready"


async def build(stack: AsyncExitStack, settings: WebSettings) -> ServiceParts:
    res = await open_resources(stack, settings, redis=True)
    assert res.redis is not None
    chat_channel = create_channel(settings.web_chat_grpc_addr)
    stack.push_async_callback(chat_channel.close)
    feedback_channel = create_channel(settings.web_feedback_grpc_addr)
    stack.push_async_callback(feedback_channel.close)
    fanout = FeedbackFanout(res.redis)
    stack.push_async_callback(fanout.aclose)

    # No readiness checks beyond the process itself: pages render without Redis (feedback then
    # arrives by polling) and a down chat service is shown as a notice on the page.
    app = create_http_app(settings, title="Workplace Roleplay web")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(
        build_router(
            settings,
            Jinja2Templates(directory=HERE / "templates"),
            chat_pb2_grpc.ChatServiceStub(chat_channel),
            feedback_pb2_grpc.FeedbackServiceStub(feedback_channel),
            fanout,
            TokenVerifier.from_settings(settings),
        )
    )
    consumer = pubsub_consumer(res.bus, FEEDBACK_SUBSCRIPTION, events_pb2.FeedbackReady, fanout.on_feedback_ready)
    return ServiceParts(http_app=app, workers=[consumer])
