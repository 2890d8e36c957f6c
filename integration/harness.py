"""Test harness: runs the real `chronik-server` binary as a child process.

Layout
- `wait_until`   the one way to wait for anything (no fixed sleeps).
- `free_port`    bind port 0 on 127.0.0.1, read the port back, close.
- `Broker`       one broker process: its temp dir, TOML config, log file, ports,
                 start / stop (SIGTERM) / kill (SIGKILL) / restart on the same
                 data dir and ports, and the admin HTTP helpers.

Every broker's stdout+stderr goes to `<workdir>/broker.log`; conftest.py attaches
the part written during a failing test to pytest's report.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent

# Every Broker ever created in this process, so conftest can show their logs and
# atexit can reap the ones a crashed test left running.
ALL_BROKERS: list["Broker"] = []


def broker_binary() -> Path:
    """The release binary: $BROKER_BIN, else <target>/release/chronik-server.

    (Not CHRONIK_*: the broker reads every CHRONIK_ variable as config and rejects unknown keys.)
    """
    explicit = os.environ.get("BROKER_BIN")
    if explicit:
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    if not target.is_absolute():
        target = REPO_ROOT / target
    return target / "release" / "chronik-server"


class WaitTimeout(AssertionError):
    pass


def wait_until(cond: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `cond` until it returns something truthy; return that value.

    Exceptions raised by `cond` count as "not yet" (the last one is reported),
    except AssertionError subclasses raised deliberately to abort the wait
    (BrokerExited), which propagate at once.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = cond()
            if value:
                return value
            last = value
        except BrokerExited:
            raise
        except Exception as exc:  # noqa: BLE001 - "not ready yet"
            last = exc
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def unique_topic(prefix: str) -> str:
    """A legal, unique topic name starting with `prefix` (a test name)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", prefix).strip("-")[:80]
    return f"{base}-{uuid.uuid4().hex[:8]}"


# Ports handed out so far: the kernel may give a later bind(0) a port an earlier one returned
# (its socket closed at once), and two ports of one node picked apart (a node's slot, then its
# extra listeners) would then collide when it starts.
_HANDED_OUT: set[int] = set()
_PORTS_LOCK = threading.Lock()


def free_port() -> int:
    """A port free now and never handed out before in this process."""
    with _PORTS_LOCK:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port


class BrokerExited(AssertionError):
    pass


class Broker:
    """One `chronik-server` process with its own temp dir, ports and log file."""

    def __init__(
        self,
        workdir: Path,
        *,
        name: str = "broker",
        node_id: int = 1,
        fsync: str = "always",
        num_partitions: int = 1,
        auto_create_topics: bool = True,
        fail_points: bool = False,
        max_request_bytes: int = 104857600,
        request_read_timeout_ms: int = 10000,
        extra_env: Optional[dict[str, str]] = None,
        extra_toml: str = "",
        admin_ca: Optional[str] = None,
    ):
        self.name = name
        self.node_id = node_id
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "chronik.toml"
        self.log_path = self.workdir / "broker.log"
        self.kafka_port = free_port()
        self.admin_port = free_port()
        while self.admin_port == self.kafka_port:
            self.admin_port = free_port()
        self.settings = dict(
            fsync=fsync,
            num_partitions=num_partitions,
            auto_create_topics=auto_create_topics,
            fail_points=fail_points,
            max_request_bytes=max_request_bytes,
            request_read_timeout_ms=request_read_timeout_ms,
        )
        self.extra_env = dict(extra_env or {})
        # Appended after the generated tables: further tables ([tls], [[kafka.listeners]], ...).
        self.extra_toml = extra_toml
        # With admin TLS ([security] admin_*_file): the CA the admin port's certificate comes from.
        self.http = requests.Session()
        if admin_ca:
            self.http.verify = admin_ca
            self.http.trust_env = False  # else REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE replaces `verify`
        self.admin_scheme = "https" if admin_ca else "http"
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        self.write_config()
        ALL_BROKERS.append(self)

    # ---- config -------------------------------------------------------------

    def config_toml(self) -> str:
        s = self.settings
        fsync_lines = f'fsync = "{s["fsync"]}"\n'
        if s["fsync"] == "interval":
            fsync_lines += "fsync_interval_ms = 50\n"
        return (
            f"node_id = {self.node_id}\n"
            "[bind]\n"
            f'kafka = "127.0.0.1:{self.kafka_port}"\n'
            f'admin = "127.0.0.1:{self.admin_port}"\n'
            "[advertise]\n"
            f'kafka = "127.0.0.1:{self.kafka_port}"\n'
            "[storage]\n"
            f"{fsync_lines}"
            "segment_bytes = 1073741824\n"
            "[kafka]\n"
            f"auto_create_topics = {str(s['auto_create_topics']).lower()}\n"
            f"num_partitions = {s['num_partitions']}\n"
            f"max_request_bytes = {s['max_request_bytes']}\n"
            f"request_read_timeout_ms = {s['request_read_timeout_ms']}\n"
            "[debug]\n"
            f"fail_points = {str(s['fail_points']).lower()}\n"
            f"{self.extra_toml}"
        )

    def write_config(self) -> None:
        self.config_path.write_text(self.config_toml())

    # ---- lifecycle ----------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def admin_url(self) -> str:
        return f"{self.admin_scheme}://127.0.0.1:{self.admin_port}"

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        return [
            str(broker_binary()), "start",
            "--config", str(self.config_path),
            "--data-dir", str(self.data_dir),
            "--node-id", str(self.node_id),
        ]

    def start(self, wait: bool = True, timeout: float = 30.0) -> "Broker":
        assert not self.is_running(), f"{self.name} already running (pid {self.pid})"
        self.starts += 1
        # Only the test's own CHRONIK_ overrides: stray ones would change or break the config.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONIK_")}
        # Connection close reasons are logged at debug; they explain most protocol failures.
        env.setdefault("RUST_LOG", "info,chronik_actors::connection=debug")
        env.update(self.extra_env)
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== harness: start #{self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=env,
            )
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> dict:
        def ready():
            self.check_alive()
            r = self.http.get(f"{self.admin_url}/admin/health", timeout=2)
            # A standalone broker elects itself within moments of answering HTTP.
            return r.status_code == 200 and r.json().get("status") == "healthy" and r.json()

        return wait_until(ready, timeout, f"{self.name} /admin/health status healthy")

    def check_alive(self) -> None:
        if self.proc is None:
            raise BrokerExited(f"{self.name} was never started")
        rc = self.proc.poll()
        if rc is not None:
            raise BrokerExited(
                f"{self.name} (pid {self.proc.pid}) exited with code {rc}; log tail:\n{self.log_tail(60)}"
            )

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the pid we started and wait for it; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"{self.name} (pid {self.proc.pid}) ignored SIGTERM for {timeout}s; killed")

    def kill(self) -> None:
        """SIGKILL the pid we started (kill -9) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def restart(self, timeout: float = 30.0) -> "Broker":
        """Start again on the same data dir, config and ports."""
        if self.is_running():
            self.stop()
        return self.start(timeout=timeout)

    # ---- logs ---------------------------------------------------------------

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, start: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 200, start: int = 0) -> str:
        text = self.log_text(start).splitlines()
        if len(text) > lines:
            return "\n".join([f"... ({len(text) - lines} earlier lines in {self.log_path})"] + text[-lines:])
        return "\n".join(text)

    def rss_kb(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    # ---- admin API ----------------------------------------------------------

    def get(self, path: str, timeout: float = 5.0) -> requests.Response:
        return self.http.get(f"{self.admin_url}{path}", timeout=timeout)

    def health(self) -> dict:
        r = self.get("/admin/health")
        r.raise_for_status()
        return r.json()

    def actors(self) -> dict:
        r = self.get("/admin/actors")
        r.raise_for_status()
        return r.json()

    def partitions(self) -> list[dict]:
        r = self.get("/admin/partitions")
        r.raise_for_status()
        return r.json()["partitions"]

    def partition(self, topic: str, partition: int) -> Optional[dict]:
        for p in self.partitions():
            if p["topic"] == topic and p["partition"] == partition:
                return p
        return None

    def fail_point(self, name: str, topic: Optional[str] = None, partition: Optional[int] = None,
                   **fields) -> requests.Response:
        """POST /admin/fail-points: `topic` and `partition` for replica_panic, other fields by name."""
        body = {"name": name, **({"topic": topic, "partition": partition} if topic is not None else {}), **fields}
        return self.http.post(f"{self.admin_url}/admin/fail-points", data=json.dumps(body),
                             headers={"content-type": "application/json"}, timeout=5)


def flatten_actors(node: dict) -> list[dict]:
    """Depth-first list of every node of an /admin/actors tree."""
    out = [node]
    for child in node.get("children") or []:
        out.extend(flatten_actors(child))
    return out


def find_actor(tree: dict, name: str) -> Optional[dict]:
    for node in flatten_actors(tree):
        if node.get("name") == name:
            return node
    return None


def _reap_all() -> None:
    for b in ALL_BROKERS:
        try:
            b.kill()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


atexit.register(_reap_all)
