"""Fixtures: brokers started from the release binary, and their logs on failure.

- `broker`        one shared broker for the whole session (fsync=interval,
                  num_partitions=2 so auto-creation's default is visible).
- `make_broker`   a factory for a test's own brokers (crash / restart tests);
                  each is stopped (SIGTERM, then SIGKILL) by its pid at teardown.
- `topic`         a unique topic name for the test.
- `cluster3`      a 3-node Raft cluster per test module (cluster.py), with node 4's slot
                  configured (4-peer TOML) but not started.

When a test fails, the part of every broker log written during that test is
attached to the report as a section named "<broker> log". The user's test plan summary
(plan_summary.py, filled in by tests/test_user_plan.py) is printed at the end of the run.
"""

from __future__ import annotations

import pytest

import group_helpers
import harness
import plan_summary
from cluster import Cluster, started
from harness import Broker, broker_binary, unique_topic

_LOG_MARKS = pytest.StashKey[dict]()


def pytest_collection_finish(session):
    """Every test needs the release binary except modules marked `no_broker` (pure checks of
    files in the repository), so those run on a fresh checkout without a build."""
    if all(item.get_closest_marker("no_broker") for item in session.items):
        return
    binary = broker_binary()
    if not binary.exists():
        raise pytest.UsageError(
            f"{binary} not found: build it first (cargo build --release --bin chronik-server) "
            "or set BROKER_BIN")


def pytest_terminal_summary(terminalreporter):
    """The filled-in Test Summary Template of every Plan made in this run, last, so CI output
    shows it whether the tests passed or failed."""
    for plan in plan_summary.PLANS:
        terminalreporter.write_sep("=", "user test plan summary")
        terminalreporter.write_line(plan.render())


@pytest.fixture(autouse=True)
def _mark_broker_logs(request):
    request.node.stash[_LOG_MARKS] = {id(b): b.log_size() for b in harness.ALL_BROKERS}
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    marks = item.stash.get(_LOG_MARKS, {})
    for b in harness.ALL_BROKERS:
        text = b.log_tail(400, start=marks.get(id(b), 0))
        if text.strip():
            report.sections.append((f"{b.name} log ({b.log_path}, pid {b.pid})", text))


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> Broker:
    b = Broker(tmp_path_factory.mktemp("shared-broker"), name="shared-broker",
               fsync="interval", num_partitions=2)
    b.start()
    yield b
    rc = b.stop()
    assert rc == 0, f"shared broker exited with {rc} on SIGTERM"


@pytest.fixture
def make_broker(tmp_path):
    started: list[Broker] = []

    def make(name: str = "broker", start: bool = True, **kwargs) -> Broker:
        b = Broker(tmp_path / f"{name}-{len(started)}", name=name, **kwargs)
        started.append(b)
        if start:
            b.start()
        return b

    yield make
    for b in started:
        try:
            b.stop(timeout=20)
        except AssertionError:
            pass  # already killed by stop(); the test's own assertions matter more


@pytest.fixture
def topic(request) -> str:
    return unique_topic(request.node.name)


@pytest.fixture(scope="module")
def gbroker(tmp_path_factory) -> Broker:
    """A broker per group-test module (see group_helpers.py), with a short initial rebalance delay."""
    b = Broker(tmp_path_factory.mktemp("groups-broker"), name="groups-broker", fsync="interval",
               num_partitions=1, auto_create_topics=False, extra_env=group_helpers.GROUP_ENV)
    b.start()
    yield b
    rc = b.stop()
    assert rc == 0, f"groups broker exited with {rc} on SIGTERM"


@pytest.fixture(scope="module")
def cluster3(tmp_path_factory) -> Cluster:
    """Nodes 1-3 started together; returns once they agree on a leader (30 s at most; the
    10 s election budget is asserted by the test, from `formation_seconds`). RF 3 and
    min_insync_replicas 2, the seed's settings.
    """
    with started(Cluster(tmp_path_factory.mktemp("cluster3"), size=3, spare=1, name="node",
                         replication_factor=3, min_insync_replicas=2), clean_stop=True) as c:
        yield c
