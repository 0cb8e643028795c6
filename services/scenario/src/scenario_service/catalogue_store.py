"""The scenario catalogue in PostgreSQL (schema "scenario"): what listing, filtering and search
by meaning (pgvector) read. The content package is the source; `sync` copies it in at start-up."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import numpy as np
from workplace_content import ContentCatalogue, Scenario
from workplace_kit.ai.embeddings import Embedder

log = logging.getLogger(__name__)
# Taken while syncing, so that replicas starting together do not embed the same files twice.
SYNC_LOCK = 0x5CE7A210
# A query that names one of a scenario's tags ("残業", "complaint") lifts it by this much; e5
# similarities of related texts sit within a few hundredths of each other.
TAG_BONUS = 0.03


def passage(scenario: Scenario, language: str) -> str:
    """What a scenario is about, as one text for the embedding (per language)."""
    parts = [
        scenario.title.get(language),
        scenario.description.get(language),
        scenario.goal.get(language),
        " ".join(scenario.tags.get(language)),
        " ".join(scenario.learning_points.get(language)),
    ]
    return "\n".join(parts)


def digest(scenario: Scenario, model_version: str) -> str:
    return hashlib.sha256((model_version + scenario.model_dump_json()).encode()).hexdigest()


@dataclass(frozen=True)
class Filters:
    category: str = ""
    difficulty: str = ""
    tag: str = ""


@dataclass(frozen=True)
class SyncResult:
    embedded: int
    removed: int
    total: int


class CatalogueStore:
    """`served`: the scenario ids this process can play. During a rollout the table may already
    hold a newer catalogue's scenarios; lists, counts and search keep to what is served here."""

    def __init__(self, pool: asyncpg.Pool, served: Sequence[str]) -> None:
        self.pool = pool
        self.served = list(served)

    async def sync(self, catalogue: ContentCatalogue, embedder: Embedder) -> SyncResult:
        """Make the tables hold exactly the content's scenarios; embed only the changed ones."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SYNC_LOCK)
            stored = dict(await conn.fetch("SELECT scenario_id, digest FROM scenarios"))
            wanted = {s.id: digest(s, embedder.model_version) for s in catalogue.scenarios}
            changed = [s for s in catalogue.scenarios if stored.get(s.id) != wanted[s.id]]
            vectors: np.ndarray | None = None
            if changed:
                texts = [passage(s, lang) for s in changed for lang in ("ja", "en")]
                vectors = await embedder.aembed_passages(texts)
            positions = {s.id: n for n, s in enumerate(catalogue.scenarios)}
            await conn.executemany(
                "UPDATE scenarios SET position = $2 WHERE scenario_id = $1 AND position <> $2",
                [(s.id, positions[s.id]) for s in catalogue.scenarios if s.id in stored],
            )
            for n, scenario in enumerate(changed):
                await conn.execute(
                    "INSERT INTO scenarios (scenario_id, position, category, difficulty, reverse_role, tags, "
                    "document, digest, model_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
                    "ON CONFLICT (scenario_id) DO UPDATE SET position = EXCLUDED.position, "
                    "category = EXCLUDED.category, difficulty = EXCLUDED.difficulty, "
                    "reverse_role = EXCLUDED.reverse_role, tags = EXCLUDED.tags, document = EXCLUDED.document, "
                    "digest = EXCLUDED.digest, model_version = EXCLUDED.model_version, updated_at = now()",
                    scenario.id,
                    positions[scenario.id],
                    scenario.category,
                    scenario.difficulty,
                    scenario.reverse_role,
                    [tag.lower() for tag in (*scenario.tags.ja, *scenario.tags.en)],
                    json.dumps(scenario.model_dump(mode="json"), ensure_ascii=False),
                    wanted[scenario.id],
                    embedder.model_version,
                )
                assert vectors is not None
                await conn.executemany(
                    "INSERT INTO scenario_vectors (scenario_id, language, embedding) VALUES ($1, $2, $3) "
                    "ON CONFLICT (scenario_id, language) DO UPDATE SET embedding = EXCLUDED.embedding",
                    [(scenario.id, "ja", vectors[2 * n]), (scenario.id, "en", vectors[2 * n + 1])],
                )
            removed = [sid for sid in stored if sid not in wanted]
            if removed:
                await conn.execute("DELETE FROM scenarios WHERE scenario_id = ANY($1::text[])", removed)
        if changed or removed:
            log.info("scenario catalogue synced: %d embedded, %d removed", len(changed), len(removed))
        return SyncResult(len(changed), len(removed), len(wanted))

    def _where(self, filters: Filters, first: int) -> tuple[str, list[object]]:
        clauses: list[str] = [f"s.scenario_id = ANY(${first}::text[])"]
        args: list[object] = [self.served]
        for column, value in (("category", filters.category), ("difficulty", filters.difficulty)):
            if value:
                args.append(value)
                clauses.append(f"s.{column} = ${first + len(args) - 1}")
        if filters.tag:
            args.append(filters.tag.lower())
            clauses.append(f"${first + len(args) - 1} = ANY(s.tags)")
        return (" AND ".join(clauses) or "true"), args

    async def list_ids(self, filters: Filters, offset: int, limit: int) -> tuple[list[str], int]:
        """(ids of one page in catalogue order, how many match in all)."""
        where, args = self._where(filters, 3)
        rows = await self.pool.fetch(
            f"SELECT scenario_id, count(*) OVER () AS total FROM scenarios s WHERE {where} "
            "ORDER BY position OFFSET $1 LIMIT $2",
            offset,
            limit,
            *args,
        )
        total = rows[0]["total"] if rows else await self.count(filters)
        return [r["scenario_id"] for r in rows], total

    async def count(self, filters: Filters) -> int:
        where, args = self._where(filters, 1)
        return int(await self.pool.fetchval(f"SELECT count(*) FROM scenarios s WHERE {where}", *args))

    async def category_counts(self, filters: Filters) -> dict[str, int]:
        """Scenarios per category under the other filters (the category filter itself ignored)."""
        where, args = self._where(Filters(difficulty=filters.difficulty, tag=filters.tag), 1)
        rows = await self.pool.fetch(
            f"SELECT category, count(*) AS n FROM scenarios s WHERE {where} GROUP BY category", *args
        )
        return {r["category"]: r["n"] for r in rows}

    async def search(
        self, query_vector: np.ndarray, query_terms: Sequence[str], filters: Filters, limit: int
    ) -> list[tuple[str, float]]:
        """(id, score) best first: the closer of the scenario's two language vectors, plus a
        small lift when the query names one of its tags."""
        where, args = self._where(filters, 4)
        rows = await self.pool.fetch(
            "SELECT s.scenario_id, max(1 - (v.embedding <=> $1)) "
            "+ CASE WHEN s.tags && $2::text[] THEN $3::float8 ELSE 0 END AS score "
            f"FROM scenarios s JOIN scenario_vectors v USING (scenario_id) WHERE {where} "
            f"GROUP BY s.scenario_id, s.tags ORDER BY score DESC, min(s.position) LIMIT {int(limit)}",
            query_vector,
            [t.lower() for t in query_terms],
            TAG_BONUS,
            *args,
        )
        return [(r["scenario_id"], float(r["score"])) for r in rows]

    async def all_tags(self) -> list[str]:
        return [r[0] for r in await self.pool.fetch("SELECT DISTINCT unnest(tags) FROM scenarios ORDER BY 1")]
