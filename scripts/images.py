"""Container images of the services, built with buildah (no Docker engine needed).

    python scripts/images.py build [SERVICE ...]   every service in the registry and the gateway, or those named
    python scripts/images.py smoke SERVICE          run a built image: the service starts and is ready (/readyz)
    python scripts/images.py base                   (re)make the local Debian base image

One Containerfile (deploy/images/Containerfile) builds every service: `--build-arg SERVICE`. The
base is a build argument too: CI passes the digest-pinned slim Python image
(deploy/images/cloudbuild.yaml); here no registry can be pulled from, so the base is Debian 12
made with debootstrap from the apt mirror, kept as localhost/workplace-base:bookworm. Images are
tagged localhost/workplace/<service>:<git commit> (and :local).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "libs" / "kit" / "src"))

import localrt  # noqa: E402 - scripts/localrt.py: the local runtime's environment file
from workplace_kit import registry  # noqa: E402 - the repository's own registry, no install needed

CONTAINERFILE = REPO / "deploy" / "images" / "Containerfile"
# The gateway (Envoy and the drain sidecar) has its own file; the other names are the registry's.
GATEWAY = "gateway"
GATEWAY_CONTAINERFILE = REPO / "deploy" / "images" / "Containerfile.gateway"
BASE_IMAGE = "localhost/workplace-base:bookworm"
REPOSITORY = "localhost/workplace"
# The shared libraries the wheels need beyond Python itself (numpy, onnxruntime, the TLS roots).
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "libgomp1", "tzdata")
# vfs and chroot isolation: what works without a container engine or user namespaces here.
BUILDAH = ("buildah", "--storage-driver", "vfs")


def log(message: str) -> None:
    print(f"[images] {message}", flush=True)


def run(*command: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=True, text=True, **kwargs)


def require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"[images] missing {', '.join(missing)}: apt-get install -y {' '.join(missing)}")


def image_exists(name: str) -> bool:
    return subprocess.run([*BUILDAH, "inspect", "--type", "image", name], capture_output=True).returncode == 0


def apt_mirror(suite: str = "bookworm") -> str:
    """The Debian mirror apt takes `suite` from (the only place packages come from here)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for source in [*sources, *sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]:
        with contextlib.suppress(OSError):
            text = source.read_text()
            if source.suffix == ".sources":  # deb822 stanzas
                for stanza in text.split("\n\n"):
                    fields = dict(
                        line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#")
                    )
                    if suite in fields.get("Suites", "").split() and "URIs" in fields:
                        return fields["URIs"].split()[0]
            for line in text.splitlines():
                words = line.split()
                if words[:1] == ["deb"] and suite in words:
                    return next(w for w in words[1:] if w.startswith("http"))
    return "http://deb.debian.org/debian"


def make_base(force: bool = False) -> None:
    if image_exists(BASE_IMAGE) and not force:
        log(f"base {BASE_IMAGE} exists")
        return
    require_tools("buildah", "debootstrap")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="workplace-base-") as tmp:
        root = Path(tmp) / "root"
        log(f"debootstrap bookworm from {apt_mirror()} (a few minutes)")
        run(
            "debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
            "bookworm", str(root), apt_mirror(),
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        # Nothing of apt's caches in the image.
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        container = run(*BUILDAH, "from", "scratch", capture_output=True).stdout.strip()
        try:
            mount = run(*BUILDAH, "mount", container, capture_output=True).stdout.strip()
            run("cp", "-a", f"{root}/.", mount)
            run(*BUILDAH, "umount", container)
            run(*BUILDAH, "config", "--env", "LANG=C.UTF-8", "--cmd", "python3", container)
            run(*BUILDAH, "commit", "--rm", container, BASE_IMAGE, stdout=subprocess.DEVNULL)
        except BaseException:
            subprocess.run([*BUILDAH, "rm", container], capture_output=True)
            raise
    log(f"base {BASE_IMAGE} made in {time.monotonic() - started:.0f} s")


def commit_tag() -> str:
    result = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return result.stdout.strip() or "dev"


def image_name(service: str, tag: str = "local") -> str:
    return f"{REPOSITORY}/{service}:{tag}"


def build(services: list[str], base: str = BASE_IMAGE) -> dict[str, float]:
    """Build each service's image; returns the seconds each took."""
    require_tools("buildah")
    if base == BASE_IMAGE:
        make_base()
    tag = commit_tag()
    trust: list[str] = []
    host_ca = os.environ.get("SSL_CERT_FILE", "")
    if host_ca and Path(host_ca).is_file():
        # This host reaches PyPI through a TLS-inspecting proxy: its CA bundle, for the build only.
        trust = ["-v", f"{host_ca}:/run/host-ca.crt:ro"]
        trust += ["--build-arg", "SSL_CERT_FILE=/run/host-ca.crt", "--build-arg", "PIP_CERT=/run/host-ca.crt"]
    took: dict[str, float] = {}
    for service in services:
        if service == GATEWAY:
            recipe = ["-f", str(GATEWAY_CONTAINERFILE)]
        else:
            registry.load().get(service)  # a clear error for a name that is not a service
            recipe = ["-f", str(CONTAINERFILE), "--build-arg", f"SERVICE={service}"]
        started = time.monotonic()
        log(f"building {image_name(service, tag)}")
        run(
            *BUILDAH, "bud", "--isolation", "chroot", "--layers",
            *recipe, "--build-arg", f"BASE={base}",
            "-t", image_name(service, tag), "-t", image_name(service),
            *trust, str(REPO),
        )  # fmt: skip
        took[service] = time.monotonic() - started
        log(f"{service}: built in {took[service]:.0f} s")
    return took


@contextlib.contextmanager
def _run_image(image: str, run_args: list[str], command: list[str]) -> Iterator[subprocess.Popen[str]]:
    """`command` in a container of `image` (buildah run: no engine needed), on the host's network,
    as uid 10001; stopped and removed on exit."""
    container = run(*BUILDAH, "from", image, capture_output=True).stdout.strip()
    process = subprocess.Popen(
        [*BUILDAH, "run", "--isolation", "chroot", "--network", "host", "--user", "10001:10001",
         *run_args, container, "--", *command],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
        if process.poll() is None:
            process.kill()
        subprocess.run([*BUILDAH, "rm", container], capture_output=True)


def _until_ready(process: subprocess.Popen[str], name: str, url: str, started: float, within_s: float) -> float:
    """Seconds from `started` until `url` answered 200; exits naming the reason if it never does."""
    while time.monotonic() < started + within_s:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise SystemExit(f"[images] {name} exited with {process.returncode}:\n{output[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    took = time.monotonic() - started
                    log(f"{name}: ready ({url} 200) in {took:.1f} s")
                    return took
        time.sleep(0.3)
    raise SystemExit(f"[images] {name}: {url} did not answer 200 within {within_s:.0f} s")


@contextlib.contextmanager
def running(service: str, env: dict[str, str], http_port: int, grpc_port: int) -> Iterator[subprocess.Popen[str]]:
    """The service's image running with the host's network."""
    settings = {**env, "WP_HTTP_HOST": "127.0.0.1", "WP_HTTP_PORT": str(http_port), "WP_GRPC_PORT": str(grpc_port)}
    env_args = [arg for key, value in settings.items() for arg in ("--env", f"{key}={value}")]
    module = registry.load().get(service).module
    with _run_image(image_name(service), env_args, ["python", "-m", module]) as process:
        yield process


def smoke(service: str, env: dict[str, str], http_port: int = 18100, grpc_port: int = 18150) -> float:
    """Start the built image; returns the seconds until /readyz answered 200 (its database, Redis
    and broker reached with the local runtime's settings)."""
    started = time.monotonic()
    with running(service, env, http_port, grpc_port) as process:
        return _until_ready(process, service, f"http://127.0.0.1:{http_port}/readyz", started, within_s=120)


def smoke_gateway(config_dir: Path, ready_url: str) -> float:
    """Run the gateway image's Envoy on config_dir/envoy.yaml, the folder mounted at /etc/envoy as
    the chart mounts its ConfigMap, on the host's network; returns the seconds until ready_url
    answered 200."""
    started = time.monotonic()
    mount = ["-v", f"{config_dir}:/etc/envoy:ro"]
    envoy = ["envoy", "--config-path", "/etc/envoy/envoy.yaml", "--disable-hot-restart", "--log-level", "warn"]
    with _run_image(image_name(GATEWAY), mount, envoy) as process:
        return _until_ready(process, GATEWAY, ready_url, started, within_s=60)


def local_env() -> dict[str, str]:
    """The local runtime's environment (.run/env, written by `task infra`), for an image on the host's network."""
    values = localrt.read_env_file(localrt.DEFAULT)
    # The key file is on the host; the image gets its content.
    keys = values.pop("WP_ENCRYPTION_KEYS_FILE", "")
    if keys and Path(keys).exists():
        values["WP_ENCRYPTION_KEYS"] = Path(keys).read_text().strip()
    return values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="build service images and the gateway's (all when none is named)")
    build_cmd.add_argument("services", nargs="*")
    build_cmd.add_argument("--base", default=BASE_IMAGE, help="the base image (default: the local Debian base)")
    smoke_cmd = commands.add_parser("smoke", help="start a built image and wait for /readyz")
    smoke_cmd.add_argument("service")
    base_cmd = commands.add_parser("base", help="make the local Debian base image")
    base_cmd.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("[images] buildah with chroot isolation needs root here")
    if args.command == "base":
        make_base(force=args.force)
    elif args.command == "build":
        took = build(args.services or [*registry.load().names, GATEWAY], base=args.base)
        log("built: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in took.items()))
    else:
        smoke(args.service, local_env())


if __name__ == "__main__":
    main()
