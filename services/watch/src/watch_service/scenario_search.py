"""A topic ("asking for a deadline extension") to the catalogue scenario that fits it best: the
scenario service's SearchScenarios over gRPC (search by meaning over the catalogue it keeps
in PostgreSQL with pgvector). The catalogue is public, so no learner token is needed; the
learner's token is passed along anyway when there is one (the call is made for them).

While the scenario service cannot be reached, the same catalogue (shipped in this service
too) is searched in-process by meaning with e5 over each scenario's title, description and
tags: a dialogue still starts, from a search without the scenario service's tag boost.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import grpc
import numpy as np
from workplace.scenario.v1 import scenario_pb2, scenario_pb2_grpc
from workplace_content import ContentCatalogue
from workplace_kit.ai.embeddings import Embedder
from workplace_kit.errors import NotFound, Unavailable
from workplace_kit.grpc_client import create_channel

log = logging.getLogger(__name__)


class ScenarioFinder(Protocol):
    async def find(self, topic: str, *, language: str, token: str = "") -> list[str]:
        """Scenario ids fitting the topic, best first."""
        ...


class GrpcScenarioFinder:
    """SearchScenarios on the scenario service."""

    def __init__(self, address: str, *, timeout_s: float = 5.0, limit: int = 5) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self.limit = limit
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> scenario_pb2_grpc.ScenarioServiceStub:
        if self._channel is None:
            self._channel = create_channel(self.address)
        return scenario_pb2_grpc.ScenarioServiceStub(self._channel)

    async def find(self, topic: str, *, language: str, token: str = "") -> list[str]:
        metadata = (("authorization", f"Bearer {token}"),) if token else None
        try:
            found = await self._stub().SearchScenarios(
                scenario_pb2.SearchScenariosRequest(query=topic, limit=self.limit, language=language),
                metadata=metadata,
                timeout=self.timeout_s,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise NotFound(f"no scenario fits that topic: {exc.details()}", field="topic") from None
            log.warning("scenario search failed: %s %s", exc.code().name, exc.details())
            raise Unavailable("the scenario catalogue cannot be searched right now; try again shortly") from None
        return [m.scenario.id for m in found.matches]

    async def aclose(self) -> None:
        if self._channel is not None:
            await self._channel.close()


class CatalogueFinder:
    """Search by meaning over the shipped catalogue, in this process (e5, built on first use)."""

    def __init__(self, content: ContentCatalogue, embedder: Embedder, *, limit: int = 5) -> None:
        self.content = content
        self.embedder = embedder
        self.limit = limit
        self._ids: list[str] = []
        self._vectors: np.ndarray | None = None
        self._lock = asyncio.Lock()

    async def _index(self) -> np.ndarray:
        async with self._lock:
            if self._vectors is None:
                ids, texts = [], []
                for scenario in self.content.scenarios:
                    for language in ("ja", "en"):
                        tags = ", ".join(scenario.tags.get(language))
                        ids.append(scenario.id)
                        texts.append(f"{scenario.title.get(language)}. {scenario.description.get(language)} {tags}")
                self._vectors = await self.embedder.aembed_passages(texts)
                self._ids = ids
            return self._vectors

    async def find(self, topic: str, *, language: str, token: str = "") -> list[str]:
        vectors = await self._index()
        query = await self.embedder.aembed_query(topic)
        scores = vectors @ query
        found: list[str] = []
        for position in np.argsort(scores)[::-1]:
            scenario_id = self._ids[int(position)]
            if scenario_id not in found:
                found.append(scenario_id)
            if len(found) >= self.limit:
                break
        return found


class FallbackFinder:
    """The scenario service; the in-process catalogue while it cannot be reached."""

    def __init__(self, primary: GrpcScenarioFinder, fallback: ScenarioFinder) -> None:
        self.primary = primary
        self.fallback = fallback

    async def find(self, topic: str, *, language: str, token: str = "") -> list[str]:
        try:
            return await self.primary.find(topic, language=language, token=token)
        except Unavailable:
            log.warning("scenario search unavailable: searching the shipped catalogue in-process")
            return await self.fallback.find(topic, language=language, token=token)

    async def aclose(self) -> None:
        await self.primary.aclose()
