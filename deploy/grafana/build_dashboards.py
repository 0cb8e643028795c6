"""Grafana dashboards as code: writes deploy/grafana/dashboards/*.json (committed).

    uv run --frozen python deploy/grafana/build_dashboards.py            # rewrite the JSON
    uv run --frozen python deploy/grafana/build_dashboards.py --out DIR  # write elsewhere

tests/contract/test_observability.py regenerates into a temporary folder and fails when the
committed files differ, parses every expression with promtool and checks that each metric
name is one the services export. Queries read raw metrics (not the recording rules), so the
dashboards work on a Prometheus that has not loaded deploy/prometheus/rules.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
NS = 'namespace="$namespace"'
RATE = "[$__rate_interval]"
# Same exclusions as deploy/prometheus/rules/workplace.rules.yaml: calls that last as long as
# the AI's reply (chat, a roleplay's messages, a watched dialogue's events) or synthesise speech
# are not part of the "p95 < 200 ms for non-AI calls" objective.
STREAMING_HTTP_HANDLERS = "/api/v2/chat|/events/.*|/api/v2/[a-z]+/.*/(events|messages)|/api/v2/tts/(speech|transcribe)"
AI_OR_STREAMING_RPCS = ".*/Stream[^/]*|.*/(GetReport|GetStrengths|Synthesize)"
GRPC_SERVER_ERROR_CODES = "UNKNOWN|INTERNAL|UNAVAILABLE|DATA_LOSS|DEADLINE_EXCEEDED|UNIMPLEMENTED"
ERROR_RATIO_SLO = 0.001
LATENCY_SLO_S = 0.2
# The service level objectives (deploy/prometheus/rules/workplace.rules.yaml, workplace.slo.*):
# availability 99.95 % at the gateway, 95 % of non-AI HTTP requests within 200 ms; 30-day budgets.
AVAILABILITY_BUDGET = 0.0005
LATENCY_BUDGET = 0.05
SLO_WINDOW = "30d"
OUTBOX_BACKLOG_THRESHOLD = 100
OUTBOX_OLDEST_PENDING_THRESHOLD_S = 300


def _query(expr: str, legend: str, ref_id: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id).datasource(DATASOURCE)


def _thresholds(limit: float | None) -> dash.ThresholdsConfig:
    steps = [Threshold(value=None, color="green")]
    if limit is not None:
        steps.append(Threshold(value=limit, color="red"))
    return dash.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)


def _graph(
    title: str,
    description: str,
    targets: list[tuple[str, str]],
    *,
    unit: str,
    limit: float | None = None,
    width: int = 12,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .span(width)
        .height(8)
        .thresholds(_thresholds(limit))
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    )
    if limit is not None:
        # Draw the objective as a dashed line, so a breach is visible at a glance.
        panel = panel.thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    for ref_id, (expr, legend) in zip("ABCDEFGH", targets, strict=False):
        panel = panel.with_target(_query(expr, legend, ref_id))
    return panel


def _stat(title: str, description: str, expr: str, *, unit: str, limit: float | None, width: int = 6) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(4)
        .thresholds(_thresholds(limit))
        .with_target(_query(expr, title).instant())
    )


def _base(title: str, uid: str, description: str) -> dash.Dashboard:
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["workplace"])
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .with_variable(dash.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            dash.QueryVariable("namespace")
            .label("Namespace")
            .datasource(DataSourceRef(type_val="prometheus", uid="${datasource}"))
            .query("label_values(http_requests_total, namespace)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
        )
    )


def workplace_overview() -> dash.Dashboard:
    http_total = f"sum by (container) (rate(http_requests_total{{{NS}}}{RATE}))"
    http_5xx = f'sum by (container) (rate(http_requests_total{{{NS},status=~"5.."}}{RATE}))'
    grpc_total = f"sum by (container) (rate(grpc_server_handled_total{{{NS}}}{RATE}))"
    grpc_errors = (
        f'sum by (container) (rate(grpc_server_handled_total{{{NS},grpc_code=~"{GRPC_SERVER_ERROR_CODES}"}}{RATE}))'
    )
    return (
        _base(
            "Workplace overview",
            "workplace-overview",
            "Per-service traffic, errors, latency and load (SLOs: 5xx < 0.1 %, non-AI p95 < 200 ms).",
        )
        .with_row(dash.Row("Health"))
        .with_panel(
            _stat(
                "Targets down",
                "Scrape targets of this namespace that do not answer (alert: WorkplaceTargetDown).",
                f"count(up{{{NS}}} == 0) or vector(0)",
                unit="none",
                limit=1,
            )
        )
        .with_panel(
            _stat(
                "HTTP 5xx share (all services)",
                "Share of HTTP answers with a 5xx status over the selected range.",
                f'sum(rate(http_requests_total{{{NS},status=~"5.."}}[$__range]))'
                f" / sum(rate(http_requests_total{{{NS}}}[$__range]))",
                unit="percentunit",
                limit=ERROR_RATIO_SLO,
            )
        )
        .with_panel(
            _stat(
                "Requests in flight",
                "HTTP and gRPC requests being served now, all services (what KEDA scales on).",
                f"sum(requests_in_flight{{{NS}}})",
                unit="none",
                limit=None,
            )
        )
        .with_panel(
            _stat(
                "Outbox events waiting",
                "Events written to a service's outbox and not yet published, largest outbox.",
                f"max(outbox_pending_events{{{NS}}}) or vector(0)",
                unit="none",
                limit=OUTBOX_BACKLOG_THRESHOLD,
            )
        )
        .with_row(dash.Row("HTTP"))
        .with_panel(
            _graph(
                "Request rate by service",
                "HTTP requests per second (health, readiness and /metrics are not counted).",
                [(http_total, "{{container}}")],
                unit="reqps",
            )
        )
        .with_panel(
            _graph(
                "5xx share by service",
                "Share of HTTP answers with a 5xx status. Objective: below 0.1 % (dashed line).",
                [(f"{http_5xx} / {http_total}", "{{container}}")],
                unit="percentunit",
                limit=ERROR_RATIO_SLO,
            )
        )
        .with_panel(
            _graph(
                "p95 latency, non-AI HTTP calls",
                "95th percentile without the SSE streams (POST /api/v2/chat, /events/...). Objective: "
                "200 ms. The histogram's buckets are 0.1, 0.5 and 1 s: values between are interpolated.",
                [
                    (
                        "histogram_quantile(0.95, sum by (container, le) (rate(http_request_duration_seconds_bucket"
                        f'{{{NS},handler!~"{STREAMING_HTTP_HANDLERS}"}}{RATE})))',
                        "{{container}}",
                    )
                ],
                unit="s",
                limit=LATENCY_SLO_S,
            )
        )
        .with_panel(
            _graph(
                "Requests in flight by service (KEDA signal)",
                "HTTP plus gRPC requests being served: an SSE reply counts while it streams. "
                "KEDA's prometheus trigger divides this by autoscaling.inFlightPerReplica.",
                [
                    (f"sum by (container) (http_requests_inprogress{{{NS}}})", "{{container}} HTTP"),
                    (f"sum by (container) (grpc_server_inprogress{{{NS}}})", "{{container}} gRPC"),
                ],
                unit="none",
            )
        )
        .with_panel(
            _graph(
                "HTTP answers by status",
                "Requests per second by service and status code.",
                [(f"sum by (container, status) (rate(http_requests_total{{{NS}}}{RATE}))", "{{container}} {{status}}")],
                unit="reqps",
                width=24,
            )
        )
        .with_row(dash.Row("gRPC"))
        .with_panel(
            _graph(
                "RPCs by status code",
                "Completed RPCs per second by service and gRPC status code.",
                [
                    (
                        f"sum by (container, grpc_code) (rate(grpc_server_handled_total{{{NS}}}{RATE}))",
                        "{{container}} {{grpc_code}}",
                    )
                ],
                unit="reqps",
            )
        )
        .with_panel(
            _graph(
                "Server error share by service",
                f"Share of RPCs ending with {GRPC_SERVER_ERROR_CODES.replace('|', ', ')}. Objective: below 0.1 %.",
                [(f"{grpc_errors} / {grpc_total}", "{{container}}")],
                unit="percentunit",
                limit=ERROR_RATIO_SLO,
            )
        )
        .with_panel(
            _graph(
                "p95 latency, non-AI RPCs",
                "95th percentile by method, without server streams and AI-backed calls (reports, strengths, TTS).",
                [
                    (
                        "histogram_quantile(0.95, sum by (grpc_method, le) (rate(grpc_server_handling_seconds_bucket"
                        f'{{{NS},grpc_method!~"{AI_OR_STREAMING_RPCS}"}}{RATE})))',
                        "{{grpc_method}}",
                    )
                ],
                unit="s",
                limit=LATENCY_SLO_S,
                width=24,
            )
        )
        .with_row(dash.Row("Gateway (Envoy)"))
        .with_panel(
            _graph(
                "Gateway answers by class",
                "Requests per second answered by the gateway listener, by status class (1xx..5xx).",
                [
                    (
                        "sum by (envoy_response_code_class) (rate(envoy_http_downstream_rq_xx"
                        f'{{{NS},envoy_http_conn_manager_prefix="gateway"}}{RATE}))',
                        "{{envoy_response_code_class}}xx",
                    )
                ],
                unit="reqps",
            )
        )
        .with_panel(
            _graph(
                "Upstream 5xx by cluster",
                "5xx answers (and failed connections) from each upstream cluster, as Envoy saw them.",
                [
                    (
                        "sum by (envoy_cluster_name) (rate(envoy_cluster_upstream_rq_xx"
                        f'{{{NS},envoy_response_code_class="5"}}{RATE}))',
                        "{{envoy_cluster_name}}",
                    )
                ],
                unit="reqps",
            )
        )
    )


def conversations_and_feedback() -> dash.Dashboard:
    handled = f"sum by (subscription, outcome) (rate(workplace_bus_handled_total{{{NS}}}{RATE}))"
    # A pod creates a (subscription, reason) series on its first dead letter, already at 1, which
    # increase() alone does not see: a series that is new within the interval counts whole (as in
    # the recording rule behind WorkplaceBusDeadLetters).
    dead_lettered = f"workplace_bus_dead_lettered_total{{{NS}}}"
    dead_letters = (
        f"sum by (subscription, reason) (({dead_lettered} unless {dead_lettered} offset $__rate_interval)"
        f" or increase({dead_lettered}{RATE}))"
    )
    return (
        _base(
            "Conversations & feedback",
            "workplace-conversations",
            "Chat streams, AI replies, Pub/Sub events between the services, dead letters, and the outboxes.",
        )
        .with_row(dash.Row("Conversations"))
        .with_panel(
            _graph(
                "Chat streams in flight",
                "Replies streaming now: SSE (POST /api/v2/chat, the chat service's only POST) and gRPC server streams.",
                [
                    (
                        f'sum(http_requests_inprogress{{{NS},container="chat",method="POST"}})',
                        "SSE POST /api/v2/chat",
                    ),
                    (
                        f'sum by (grpc_method) (grpc_server_inprogress{{{NS},grpc_method=~".*/Stream[^/]*"}})',
                        "{{grpc_method}}",
                    ),
                ],
                unit="none",
            )
        )
        .with_panel(
            _graph(
                "Feedback streams in flight (web)",
                "GET requests in flight on web: mostly the feedback SSE streams (/events/...), "
                "plus page loads, which are short.",
                [(f'sum(http_requests_inprogress{{{NS},container="web",method="GET"}})', "web GET")],
                unit="none",
            )
        )
        .with_panel(
            _graph(
                "AI replies by engine and outcome",
                "unavailable = quota, overload or timeout after retries and model fallback (alert: "
                "WorkplaceAIUnavailable). The chat stream still answers 200 then.",
                [
                    (
                        f"sum by (engine, outcome) (rate(workplace_ai_replies_total{{{NS}}}{RATE}))",
                        "{{engine}} {{outcome}}",
                    )
                ],
                unit="reqps",
            )
        )
        .with_panel(
            _graph(
                "AI time to first token, p95",
                "From asking the engine to its first chunk.",
                [
                    (
                        "histogram_quantile(0.95, sum by (engine, le) "
                        f"(rate(workplace_ai_first_token_seconds_bucket{{{NS}}}{RATE})))",
                        "{{engine}}",
                    )
                ],
                unit="s",
            )
        )
        .with_row(dash.Row("Pub/Sub"))
        .with_panel(
            _graph(
                "Published by topic and outcome",
                "Messages published per second (outcome error: the publish failed).",
                [
                    (
                        f"sum by (topic, outcome) (rate(workplace_bus_published_total{{{NS}}}{RATE}))",
                        "{{topic}} {{outcome}}",
                    )
                ],
                unit="reqps",
            )
        )
        .with_panel(
            _graph(
                "Handled by subscription and outcome",
                "Deliveries per second. ok; duplicate: the event id was handled before, skipped (normal after a "
                "redelivery or a replay); retry: the handler failed, the message comes back after a backoff; "
                "dead_lettered: PermanentFailure or the last of max_delivery_attempts failed; undecodable: "
                "dead-lettered at once. Alert: WorkplaceBusConsumerFailing, when more than 5 % fail for 15 minutes.",
                [(handled, "{{subscription}} {{outcome}}")],
                unit="reqps",
            )
        )
        .with_panel(
            _graph(
                "Handler latency p95 by subscription",
                "Time spent in event handlers.",
                [
                    (
                        "histogram_quantile(0.95, sum by (subscription, le) "
                        f"(rate(workplace_bus_handler_seconds_bucket{{{NS}}}{RATE})))",
                        "{{subscription}}",
                    )
                ],
                unit="s",
            )
        )
        .with_panel(
            _graph(
                "Dead letters by subscription and reason",
                "Events sent to the subscription's dead-letter topic (<subscription>.dlq), per interval. "
                "attempts_exhausted: every delivery attempt failed; permanent: the handler raised "
                "PermanentFailure; undecodable: the payload does not match the consumer's schema. They are "
                "not lost: fix the cause, then `task dlq:replay -- <subscription>` (in the cluster: "
                "python -m workplace_kit.pubsub replay <subscription> in the consuming pod). Alert: "
                "WorkplaceBusDeadLetters. Cloud Monitoring's subscription/num_undelivered_messages on "
                "<subscription>.dlq shows how many still wait.",
                [(dead_letters, "{{subscription}} {{reason}}")],
                unit="none",
            )
        )
        .with_panel(
            _graph(
                "Pull errors by subscription and code",
                "Failed pulls per second (broker unreachable, subscription missing: the bus declares it "
                "again itself). Empty long polls are not errors. Alert: WorkplaceBusPullFailing (10 minutes).",
                [
                    (
                        f"sum by (subscription, code) (rate(workplace_bus_pull_errors_total{{{NS}}}{RATE}))",
                        "{{subscription}} {{code}}",
                    )
                ],
                unit="reqps",
                width=24,
            )
        )
        .with_row(dash.Row("Outbox"))
        .with_panel(
            _graph(
                "Outbox events waiting by service",
                "Events written with the service's data but not yet published by the relay. "
                f"Alert when above {OUTBOX_BACKLOG_THRESHOLD} for 10 minutes (WorkplaceOutboxBacklogStuck).",
                [(f"max by (service) (outbox_pending_events{{{NS}}})", "{{service}}")],
                unit="none",
                limit=OUTBOX_BACKLOG_THRESHOLD,
            )
        )
        .with_panel(
            _graph(
                "Oldest event waiting in the outbox",
                "Age of the oldest event not yet published. The relay retries a failed publish within 30 s, "
                f"so an age above {OUTBOX_OLDEST_PENDING_THRESHOLD_S // 60} minutes means it cannot publish "
                "(alert: WorkplaceOutboxOldestPendingHigh, for 5 minutes).",
                [(f"max by (service) (outbox_oldest_pending_age_seconds{{{NS}}})", "{{service}}")],
                unit="s",
                limit=OUTBOX_OLDEST_PENDING_THRESHOLD_S,
            )
        )
        .with_panel(
            _graph(
                "Outbox events set aside (dead)",
                "Rows the relay gave up on: undecodable, or refused by the broker as invalid. They are not "
                "published until re-queued; the outbox table's last_error says why (alert: "
                "WorkplaceOutboxDeadEvents, any).",
                [(f"max by (service) (outbox_dead_events{{{NS}}})", "{{service}}")],
                unit="none",
                limit=1,
            )
        )
        .with_panel(
            _graph(
                "Events republished after broker state loss",
                "Published events sent again because the broker lost its topics and subscriptions (an "
                "emulator restart). Not an error: consumers skip what they already handled (outcome duplicate).",
                [
                    (
                        f"sum by (service) (increase(outbox_republished_total{{{NS}}}{RATE}))",
                        "{{service}}",
                    )
                ],
                unit="none",
            )
        )
    )


def service_levels() -> dash.Dashboard:
    gateway = f'{NS},envoy_http_conn_manager_prefix="gateway"'
    errors = f'sum(increase(envoy_http_downstream_rq_xx{{{gateway},envoy_response_code_class="5"}}[{SLO_WINDOW}]))'
    requests = f"sum(increase(envoy_http_downstream_rq_total{{{gateway}}}[{SLO_WINDOW}]))"
    fast = f'handler!~"{STREAMING_HTTP_HANDLERS}",le="{LATENCY_SLO_S}"'
    non_ai = f'handler!~"{STREAMING_HTTP_HANDLERS}"'
    within = f"sum(increase(http_request_duration_seconds_bucket{{{NS},{fast}}}[{SLO_WINDOW}]))"
    counted = f"sum(increase(http_request_duration_seconds_count{{{NS},{non_ai}}}[{SLO_WINDOW}]))"

    def burn(window: str) -> str:
        return (
            f'(sum(rate(envoy_http_downstream_rq_xx{{{gateway},envoy_response_code_class="5"}}[{window}]))'
            f" / sum(rate(envoy_http_downstream_rq_total{{{gateway}}}[{window}]))) / {AVAILABILITY_BUDGET}"
        )

    return (
        _base(
            "Workplace service levels",
            "workplace-slo",
            "The design's objectives and their 30-day error budgets: availability 99.95 % at the gateway, "
            "95 % of non-AI HTTP requests within 200 ms. Alerts: WorkplaceAvailabilityBudget*, "
            "WorkplaceLatencyBudget* (multi-window burn rates).",
        )
        .time("now-7d", "now")
        .with_row(dash.Row("Objectives over 30 days"))
        .with_panel(
            _stat(
                "Availability, 30 days",
                "Share of the gateway's requests not answered 5xx (objective 99.95 %).",
                f"1 - {errors} / {requests}",
                unit="percentunit",
                limit=None,
            )
        )
        .with_panel(
            _stat(
                "Availability budget left",
                "1 = untouched, 0 = spent, below 0 = objective missed.",
                f"1 - ({errors} / {requests}) / {AVAILABILITY_BUDGET}",
                unit="percentunit",
                limit=None,
            )
        )
        .with_panel(
            _stat(
                "Non-AI requests within 200 ms, 30 days",
                "Share of non-AI HTTP requests answered within 200 ms (objective 95 %; SSE streams and speech "
                "left out).",
                f"{within} / {counted}",
                unit="percentunit",
                limit=None,
            )
        )
        .with_panel(
            _stat(
                "Latency budget left",
                "1 = untouched, 0 = spent.",
                f"1 - (1 - {within} / {counted}) / {LATENCY_BUDGET}",
                unit="percentunit",
                limit=None,
            )
        )
        .with_row(dash.Row("Burn rate"))
        .with_panel(
            _graph(
                "Availability burn rate",
                "How many times faster than it lasts the budget is spent (1 = exactly the budget over 30 days). "
                "Pages above 14.4 over 1 h (with 5 min) or 6 over 6 h (with 30 min); tickets above 3 over 1 d or 1 "
                "over 3 d.",
                [(burn("1h"), "1 h"), (burn("6h"), "6 h"), (burn("1d"), "1 d"), (burn("3d"), "3 d")],
                unit="none",
                limit=14.4,
                width=24,
            )
        )
        .with_panel(
            _graph(
                "Gateway 5xx by upstream",
                "Which service the gateway's 5xx come from (envoy cluster = service).",
                [
                    (
                        "sum by (envoy_cluster_name) (rate(envoy_cluster_upstream_rq_xx"
                        f'{{{NS},envoy_response_code_class="5"}}{RATE}))',
                        "{{envoy_cluster_name}}",
                    )
                ],
                unit="reqps",
                width=24,
            )
        )
    )


def business() -> dash.Dashboard:
    """The design's business measures (workplace_kit.business_metrics): practice sessions per day,
    the share of them completed, and feedback delivered. "Per day" is the rolling 24 h before each
    point (recording rules workplace.business.* hold the same)."""
    day = "[1d]"
    started = f"workplace_sessions_started_total{{{NS}}}"
    ended = f"workplace_sessions_ended_total{{{NS}}}"
    completed = f'workplace_sessions_ended_total{{{NS},outcome="completed"}}'
    feedback = f"workplace_feedback_delivered_total{{{NS}}}"
    completion_note = (
        "Sessions completed over sessions started. Completed: a roleplay that reached its goal, a "
        "watched dialogue played to its end, a free chat the learner closed (which brings its report). "
        "Not completed: out of turns (timeout), stopped before the end (abandoned), or never ended."
    )
    return (
        _base(
            "Workplace business",
            "workplace-business",
            "Practice sessions per day, completion rate and feedback delivered, by mode "
            "(chat: free chat, scenario: roleplay, watch: watched dialogue).",
        )
        .time("now-30d", "now")
        .with_row(dash.Row("Last 24 hours"))
        .with_panel(
            _stat(
                "Sessions started",
                "Practice sessions started in the last 24 hours, every mode.",
                f"sum(increase({started}{day}))",
                unit="none",
                limit=None,
                width=8,
            )
        )
        .with_panel(
            _stat(
                "Completion rate",
                completion_note,
                f"sum(increase({completed}{day})) / sum(increase({started}{day}))",
                unit="percentunit",
                limit=None,
                width=8,
            )
        )
        .with_panel(
            _stat(
                "Feedback delivered",
                "Turn analyses and coaching reports made ready for learners in the last 24 hours.",
                f"sum(increase({feedback}{day}))",
                unit="none",
                limit=None,
                width=8,
            )
        )
        .with_row(dash.Row("Per day"))
        .with_panel(
            _graph(
                "Sessions per day by mode",
                "Practice sessions started in the 24 hours before each point.",
                [(f"sum by (mode) (increase({started}{day}))", "{{mode}}")],
                unit="none",
            )
        )
        .with_panel(
            _graph(
                "Completion rate by mode",
                completion_note,
                [
                    (
                        f"sum by (mode) (increase({completed}{day})) / sum by (mode) (increase({started}{day}))",
                        "{{mode}}",
                    )
                ],
                unit="percentunit",
            )
        )
        .with_panel(
            _graph(
                "Sessions ended per day by mode and outcome",
                "completed; timeout: a roleplay out of turns before its goal; abandoned: stopped by the "
                "learner before the end (or a watched dialogue nobody watched); error.",
                [(f"sum by (mode, outcome) (increase({ended}{day}))", "{{mode}} {{outcome}}")],
                unit="none",
            )
        )
        .with_panel(
            _graph(
                "Feedback delivered per day",
                "analysis: a learner turn's analysis and card, sent to the learner's feedback stream "
                "(feedback.ready); report: a session's coaching report.",
                [(f"sum by (kind) (increase({feedback}{day}))", "{{kind}}")],
                unit="none",
            )
        )
    )


def dashboards() -> dict[str, dash.Dashboard]:
    """File name -> dashboard builder."""
    return {
        "workplace-overview.json": workplace_overview(),
        "workplace-conversations.json": conversations_and_feedback(),
        "workplace-slo.json": service_levels(),
        "workplace-business.json": business(),
    }


def render(builder: dash.Dashboard) -> str:
    model = builder.build()
    # Grafana keys panel state (links, edits, "view panel") on ids unique within a dashboard.
    for panel_id, panel in enumerate(model.panels or [], start=1):
        panel.id_val = panel_id
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, builder in dashboards().items():
        path = out_dir / name
        path.write_text(render(builder), encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for the JSON files")
    args = parser.parse_args()
    for path in write_all(args.out):
        print(path)


if __name__ == "__main__":
    main()
