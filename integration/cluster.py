"""Multi-node harness: N `chronik-server` processes forming one Raft cluster.

Layout
- `Slot`         the ports one node id owns (kafka, wal, raft, admin), picked up front so every
                 TOML can list every peer, including spare slots for nodes added later (node 4).
- `ClusterNode`  a `harness.Broker` whose TOML is the seed's cluster shape. It keeps Broker's
                 log file, start / stop (SIGTERM) / kill (SIGKILL) / restart by pid, adds pause /
                 resume (SIGSTOP / SIGCONT), and is registered in `harness.ALL_BROKERS`, so
                 conftest attaches its log on failure.
- `Cluster`      the nodes, formation, and the helpers tests need: health(i),
                 wait_for_leader(), leader_node(), bootstrap(), hold_for(), the `cluster` CLI.
- `LeaderTermSampler`  every node's (leader_id, term) every 50 ms in a thread, for tests that
                 assert a membership change costs no election.

`raft` and `replication` are written as the `[raft]` / `[replication]` tables of every TOML
(integer values; e.g. `replication={"replica_lag_max_ms": 3000}`); `storage` and `debug` add keys
to `[storage]` and `[debug]`.

Members (ids 1..size, or first_id.. for a second cluster beside the first) list every member as
a peer; a spare node k lists peers first_id..k, i.e. itself and every member, which is how the
seed's node 4 is configured before `cluster add-node`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

import requests

from harness import Broker, BrokerExited, broker_binary, free_port, wait_until

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Slot:
    node_id: int
    kafka: int
    wal: int
    raft: int
    admin: int

    def addr(self, port: int) -> str:
        return f"127.0.0.1:{port}"


def pick_ports(count: int) -> list[int]:
    """`count` distinct free ports."""
    return [free_port() for _ in range(count)]


def round_robin(nodes: Iterable[int], partitions: int, rf: int) -> dict[int, list[int]]:
    """The seed's assignment table: partition p -> [nodes[(p + k) % n] for k < rf]."""
    ns = sorted(nodes)
    return {p: [ns[(p + k) % len(ns)] for k in range(rf)] for p in range(partitions)}


class NotAgreed(Exception):
    """Raised inside a wait: the nodes do not agree yet (the message says how)."""


def all_threads_stopped(pid: int) -> bool:
    """Whether every thread of `pid` is stopped (state T in its task list)."""
    tasks = os.listdir(f"/proc/{pid}/task")
    states = []
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                # The state follows the command name, which is in parentheses and may hold spaces.
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        except FileNotFoundError:
            continue  # a thread that ended meanwhile
    return all(s == "T" for s in states)


class ClusterNode(Broker):
    """One node of a Cluster: Broker's process, log and admin helpers with a cluster TOML."""

    def __init__(self, cluster: "Cluster", slot: Slot, peers: list[Slot], workdir: Path, name: str,
                 **broker_kwargs):
        # Set before Broker.__init__, which writes the config through config_toml().
        self.cluster = cluster
        self.slot = slot
        self.peers = peers
        super().__init__(workdir, name=name, node_id=slot.node_id, **broker_kwargs)
        # Broker picked its own kafka/admin ports; the cluster's slot is what the TOML says.
        self.kafka_port = slot.kafka
        self.admin_port = slot.admin
        self.write_config()

    def config_toml(self) -> str:
        c, s, slot = self.cluster, self.settings, self.slot
        a = slot.addr
        lines = [
            f"node_id = {slot.node_id}",
            f"replication_factor = {c.replication_factor}",
            f"min_insync_replicas = {c.min_insync_replicas}",
            f'data_dir = "{self.data_dir}"',
            "",
            "[bind]",
            f'kafka = "{a(slot.kafka)}"',
            f'wal = "{a(slot.wal)}"',
            f'raft = "{a(slot.raft)}"',
            f'admin = "{a(slot.admin)}"',
            "",
            "[advertise]",
            f'kafka = "{a(slot.kafka)}"',
            f'wal = "{a(slot.wal)}"',
            f'raft = "{a(slot.raft)}"',
            "",
        ]
        for p in self.peers:
            lines += [
                "[[peers]]",
                f"id = {p.node_id}",
                f'kafka = "{p.addr(p.kafka)}"',
                f'wal = "{p.addr(p.wal)}"',
                f'raft = "{p.addr(p.raft)}"',
                # The default (raft host):(10000 + id) is not a port this harness owns.
                f'admin = "{p.addr(p.admin)}"',
                "",
            ]
        lines += ["[storage]", f'fsync = "{s["fsync"]}"']
        if s["fsync"] == "interval":
            lines.append("fsync_interval_ms = 50")
        lines += [f"{k} = {v}" for k, v in c.storage.items()]
        lines += [
            "",
            "[kafka]",
            f"auto_create_topics = {str(s['auto_create_topics']).lower()}",
            f"num_partitions = {s['num_partitions']}",
            f"max_request_bytes = {s['max_request_bytes']}",
            f"request_read_timeout_ms = {s['request_read_timeout_ms']}",
            "",
            "[debug]",
            f"fail_points = {str(s['fail_points']).lower()}",
        ]
        lines += [f"{k} = {v}" for k, v in c.debug.items()]
        if self.extra_toml:
            lines += ["", self.extra_toml]
        if c.raft:
            lines += ["", "[raft]"] + [f"{k} = {v}" for k, v in c.raft.items()]
        if c.replication:
            lines += ["", "[replication]"] + [f"{k} = {v}" for k, v in c.replication.items()]
        return "\n".join(lines) + "\n"

    def pause(self) -> None:
        """SIGSTOP the pid we started: it keeps its sockets (connects still succeed) and answers
        nothing, like a stalled host; `resume` continues it."""
        if self.is_running():
            os.kill(self.proc.pid, signal.SIGSTOP)
            # The signal stops each thread only as it next runs; until all have, the process may
            # still read and answer a request sent after this returns.
            wait_until(lambda: all_threads_stopped(self.proc.pid), 5, f"{self.name} stopping", interval=0.005)

    def resume(self) -> None:
        """SIGCONT the pid we started (harmless if it was not stopped)."""
        if self.is_running():
            os.kill(self.proc.pid, signal.SIGCONT)

    # A node without a leader (or not a member) may answer health with a non-200 status;
    # what matters is that the admin API answers with the health document.

    def health(self) -> dict:
        r = self.get("/admin/health", timeout=3)
        body = r.json()
        if not isinstance(body, dict) or "node_id" not in body:
            raise ValueError(f"{self.name}: /admin/health answered {r.status_code} {r.text[:200]!r}")
        return body

    def wait_ready(self, timeout: float = 30.0) -> dict:
        def ready():
            self.check_alive()
            return self.health()

        return wait_until(ready, timeout, f"{self.name} /admin/health to answer", interval=0.1)

    # ---- logs -----------------------------------------------------------------

    def log_lines(self, pattern: str, start: int = 0) -> list[str]:
        """Lines of the log (from byte `start`) matching the regex `pattern`, ANSI stripped."""
        rx = re.compile(pattern)
        return [ln for ln in ANSI.sub("", self.log_text(start)).splitlines() if rx.search(ln)]


class Cluster:
    """`size` member nodes (ids 1..size) plus `spare` configured-but-not-started slots."""

    def __init__(
        self,
        workdir: Path,
        *,
        size: int = 3,
        spare: int = 1,
        name: str = "node",
        replication_factor: int = 3,
        min_insync_replicas: int = 1,
        raft: Optional[dict[str, Any]] = None,
        replication: Optional[dict[str, Any]] = None,
        storage: Optional[dict[str, Any]] = None,
        debug: Optional[dict[str, Any]] = None,
        fail_points: bool = False,
        first_id: int = 1,
        fsync: str = "interval",
        auto_create_topics: bool = False,
        num_partitions: int = 1,
        extra_env: Optional[dict[str, str]] = None,
        extra_toml: Optional[Callable[[int], str]] = None,
        admin_ca: Optional[str] = None,
    ):
        self.workdir = Path(workdir)
        self.size = size
        self.replication_factor = replication_factor
        self.min_insync_replicas = min_insync_replicas
        self.raft = dict(raft or {})
        self.replication = dict(replication or {})  # [replication] keys, e.g. replica_lag_max_ms
        self.storage = dict(storage or {})  # more [storage] keys, e.g. segment_bytes
        self.debug = dict(debug or {})  # more [debug] keys (test-only switches)
        self.members = list(range(first_id, first_id + size))
        ids = list(range(first_id, first_id + size + spare))
        ports = pick_ports(4 * len(ids))
        self.slots = {i: Slot(i, *ports[4 * k:4 * k + 4]) for k, i in enumerate(ids)}
        self.nodes: dict[int, ClusterNode] = {}
        for i in ids:
            peer_ids = self.members if i in self.members else list(range(first_id, i + 1))
            self.nodes[i] = ClusterNode(
                self, self.slots[i], [self.slots[p] for p in peer_ids],
                self.workdir / f"{name}{i}", f"{name}{i}",
                fsync=fsync, auto_create_topics=auto_create_topics, num_partitions=num_partitions,
                extra_env=extra_env, fail_points=fail_points,
                extra_toml=extra_toml(i) if extra_toml else "", admin_ca=admin_ca,
            )
        self.third_started_at: Optional[float] = None
        self.formed_at: Optional[float] = None

    # ---- lifecycle --------------------------------------------------------------

    def start(self, ids: Optional[Iterable[int]] = None, leader_timeout: float = 30.0) -> int:
        """Start the members (or `ids`) without waiting on each other, then wait for all of
        them to answer health and agree on a leader; returns the leader id.

        `formation_seconds` is from the last process start to the first moment of agreement.
        """
        ids = list(ids or self.members)
        for i in ids:
            self.nodes[i].start(wait=False)
        self.third_started_at = time.monotonic()
        for i in ids:
            self.nodes[i].wait_ready(leader_timeout)
        leader = self.wait_for_leader(leader_timeout, ids=ids)
        self.formed_at = time.monotonic()
        return leader

    @property
    def formation_seconds(self) -> Optional[float]:
        if self.third_started_at is None or self.formed_at is None:
            return None
        return self.formed_at - self.third_started_at

    def node(self, i: int) -> ClusterNode:
        return self.nodes[i]

    def kill(self, i: int) -> None:
        self.nodes[i].kill()

    def pause(self, i: int) -> None:
        self.nodes[i].pause()

    def resume(self, i: int) -> None:
        self.nodes[i].resume()

    def stop(self, i: int, timeout: float = 30.0) -> int:
        return self.nodes[i].stop(timeout)

    def restart(self, i: int, timeout: float = 30.0) -> ClusterNode:
        """Start node i again on its data dir, config and ports (stopping it first if running)."""
        n = self.nodes[i]
        if n.is_running():
            n.stop()
        n.start(wait=False)
        n.wait_ready(timeout)
        return n

    def post_add_node(self, i: int, via: int, timeout: float = 90.0) -> requests.Response:
        """`POST /admin/add-node` for slot `i` (started, outside the cluster) to node `via`."""
        s = self.slots[i]
        body = {"node_id": i, "kafka_addr": s.addr(s.kafka), "wal_addr": s.addr(s.wal), "raft_addr": s.addr(s.raft)}
        return self.nodes[via].http.post(f"{self.admin_url(via)}/admin/add-node", json=body, timeout=timeout)

    def stop_all(self, timeout: float = 30.0) -> dict[int, int]:
        """SIGTERM every running node (each by its pid); their exit codes."""
        rcs = {}
        for i, n in self.nodes.items():
            if n.is_running():
                try:
                    rcs[i] = n.stop(timeout)
                except AssertionError:
                    rcs[i] = -9  # ignored SIGTERM, stop() killed it
        return rcs

    def kill_all(self) -> None:
        for n in self.nodes.values():
            n.kill()

    # ---- addresses --------------------------------------------------------------

    def running(self, ids: Optional[Iterable[int]] = None) -> list[int]:
        return [i for i in (ids or self.members) if self.nodes[i].is_running()]

    def bootstrap(self, i: Optional[int] = None) -> str:
        """Node i's Kafka address, or the first running member's."""
        if i is None:
            i = self.running()[0]
        return self.nodes[i].bootstrap

    def admin_url(self, i: int) -> str:
        return self.nodes[i].admin_url

    def config_path(self, i: int) -> Path:
        return self.nodes[i].config_path

    # ---- health -----------------------------------------------------------------

    def health(self, i: int) -> dict:
        return self.nodes[i].health()

    def healths(self, ids: Optional[Iterable[int]] = None) -> dict[int, dict]:
        out = {}
        for i in ids or self.running():
            self.nodes[i].check_alive()
            out[i] = self.nodes[i].health()
        return out

    def agreement(self, ids: Optional[Iterable[int]] = None,
                  voters: Optional[list[int]] = None) -> tuple[int, dict[int, dict]]:
        """(leader id, health per node) if the nodes agree; raises NotAgreed otherwise.

        Agreement: one non-null leader_id, one term, one cluster_nodes list (== voters if
        given); the leader is among `ids`, it alone says is_leader, every status is healthy.
        """
        ids = list(ids or self.running())
        hs = self.healths(ids)

        def summary() -> str:
            return "; ".join(f"node {i}: leader={h.get('leader_id')} term={h.get('term')} "
                             f"nodes={h.get('cluster_nodes')} is_leader={h.get('is_leader')} "
                             f"status={h.get('status')}" for i, h in hs.items())

        leaders = {h.get("leader_id") for h in hs.values()}
        terms = {h.get("term") for h in hs.values()}
        views = {tuple(h.get("cluster_nodes") or ()) for h in hs.values()}
        if len(leaders) != 1 or None in leaders or len(terms) != 1 or len(views) != 1:
            raise NotAgreed(summary())
        leader = next(iter(leaders))
        if leader not in hs:
            raise NotAgreed(f"leader {leader} is not among running nodes {ids}: {summary()}")
        if voters is not None and list(next(iter(views))) != sorted(voters):
            raise NotAgreed(f"cluster_nodes is not {sorted(voters)}: {summary()}")
        if sorted(i for i, h in hs.items() if h.get("is_leader") is True) != [leader]:
            raise NotAgreed(f"is_leader is not true on exactly node {leader}: {summary()}")
        if any(h.get("status") != "healthy" for h in hs.values()):
            raise NotAgreed(f"not every status is healthy: {summary()}")
        return leader, hs

    def wait_for_leader(self, timeout: float = 15.0, ids: Optional[Iterable[int]] = None,
                        voters: Optional[list[int]] = None) -> int:
        """The leader id once every running member (or `ids`) agrees (see `agreement`)."""
        ids = list(ids) if ids is not None else None
        leader, _ = wait_until(lambda: self.agreement(ids, voters), timeout,
                               f"nodes {ids or self.running()} to agree on a Raft leader", interval=0.1)
        return leader

    def leader_node(self) -> ClusterNode:
        return self.nodes[self.wait_for_leader()]

    def followers(self) -> list[int]:
        leader = self.wait_for_leader()
        return [i for i in self.running() if i != leader]

    # ---- the `chronik-server cluster ...` CLI ----------------------------------------

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONIK_")}
        return subprocess.run([str(broker_binary()), *args], capture_output=True, text=True,
                              timeout=timeout, env=env, stdin=subprocess.DEVNULL)


@contextmanager
def started(c: "Cluster", clean_stop: bool = False) -> Iterator["Cluster"]:
    """Starts `c` (killing whatever started if formation fails) and, when the block ends, kills
    it, or with `clean_stop` SIGTERMs every node and asserts each exited 0. Fixtures write
    `with started(Cluster(...)) as c: yield c`."""
    try:
        c.start()
    except BaseException:
        c.kill_all()
        raise
    yield c
    if not clean_stop:
        c.kill_all()
        return
    rcs = c.stop_all()
    bad = {i: rc for i, rc in rcs.items() if rc != 0}
    assert not bad, f"cluster nodes exited with non-zero codes on SIGTERM: {bad}"


def hold_for(cond: Callable[[], Any], duration: float, what: str, interval: float = 0.1) -> int:
    """Poll `cond` for `duration` seconds; it must be truthy every time (an exception or a
    falsy value fails at once). Returns how many checks passed."""
    deadline = time.monotonic() + duration
    checks = 0
    while True:
        try:
            value = cond()
        except BrokerExited:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as the failure
            raise AssertionError(f"{what}: check {checks + 1} raised {exc!r}") from exc
        if not value:
            raise AssertionError(f"{what}: stopped holding after {checks} checks (got {value!r})")
        checks += 1
        if time.monotonic() >= deadline:
            return checks
        time.sleep(interval)


class LeaderTermSampler:
    """Samples every node of `ids` for (leader_id, term) every `interval` seconds, in a thread,
    from `start()` (or entering) to `stop()` (or leaving): what a test asserts when a change
    must not cost an election. A node that does not answer in time is counted in `misses`,
    not as a change; the test judges those. A node is sampled only while it lists itself among
    the voters: what a node not yet added (or already removed) reports is not a voter's view.

    `samples` holds (monotonic time, node, leader_id, term); `changes(leader, term)` the samples
    that differ from the given pair."""

    def __init__(self, cluster: "Cluster", ids: Iterable[int], interval: float = 0.05):
        self.cluster = cluster
        self.ids = list(ids)
        self.interval = interval
        self.samples: list[tuple[float, int, Any, Any]] = []
        self.misses: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leader-term-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for i in self.ids:
                try:
                    h = self.cluster.health(i)
                    if i in (h.get("cluster_nodes") or []):
                        self.samples.append((time.monotonic(), i, h.get("leader_id"), h.get("term")))
                except Exception as exc:  # noqa: BLE001 - counted; the test judges
                    self.misses.append((time.monotonic(), i, repr(exc)))
            self._stop.wait(self.interval)

    def start(self) -> "LeaderTermSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def __enter__(self) -> "LeaderTermSampler":
        return self.start()

    def __exit__(self, *_exc) -> bool:
        self.stop()
        return False

    def changes(self, leader: int, term: int) -> list[tuple[float, int, Any, Any]]:
        return [s for s in self.samples if (s[2], s[3]) != (leader, term)]

    def since(self, t: float) -> list[tuple[float, int, Any, Any]]:
        """The samples taken at or after monotonic time `t`."""
        return [s for s in self.samples if s[0] >= t]


__all__ = ["Cluster", "ClusterNode", "LeaderTermSampler", "NotAgreed", "Slot", "hold_for", "pick_ports", "started",
           "round_robin"]
