"""The web console at `GET /` on the admin port, in headless Chromium (Debian's package, driven by
Playwright) against a real 3-node cluster with node 4's slot spare.

What an operator relies on, each checked in the browser:
- the page loads with no console error, on any node, and shows three nodes, the Raft leader, the
  term and the cluster id the REST API reports;
- the partition map shows one leader per partition, on the node the metadata names, with the
  replica's offsets on hover; the groups panel shows a live consumer's assignment and lag;
- a replica panicked through the fail point shows its restart count rising in the actor tree;
- the actions ask for confirmation (Cancel changes nothing); pausing rebalancing holds the moves
  `add-node` planned, resuming lets them progress with bytes copied, and the map ends with node 4;
- removing node 4 from the console drains it and it leaves the voters;
- the charts draw produce requests per node from each node's /metrics;
- a node frozen (SIGSTOP) or killed (-9) shows as unreachable while the page goes on serving the
  others, and healthy again once it is back;
- on a node with admin tokens, the first action asks for the token, then it and later actions
  carry it (the relay passes it on).

Screenshots of each panel go to `target/test-artifacts/console/` (printed at the end).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
import requests
from kafka import KafkaConsumer, KafkaProducer

from cluster import Cluster, started
from harness import Broker, find_actor, unique_topic, wait_until
from replication_helpers import create_topic

playwright_sync = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(__file__).resolve().parents[2] / "target" / "test-artifacts" / "console"
VOTERS = [1, 2, 3]
PARTITIONS = 6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    # Each rebalance step is held 1 s (fail point), so a move stays in a phase across at least
    # one of the console's once-a-second refreshes and its progress can be seen (at 400 ms a
    # whole move could fall between two refreshes, and did once in CI).
    with started(Cluster(tmp_path_factory.mktemp("console"), size=3, spare=1, name="cnode",
                         fail_points=True, min_insync_replicas=2,
                         debug={"rebalance_step_delay_ms": 1000})) as c:
        c.wait_for_leader(voters=VOTERS)
        yield c


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed (integration/clients/install.sh installs it)")
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def produce(cluster: Cluster, topic: str, count: int, pad: int = 0, partition: int | None = None) -> None:
    """`count` numbered records (padded by `pad` bytes), round-robin over the partitions unless one
    is given, acks=all."""
    p = KafkaProducer(bootstrap_servers=cluster.bootstrap(1), acks="all")
    for n in range(count):
        p.send(topic, b"%06d" % n + b"." * pad, partition=n % PARTITIONS if partition is None else partition)
    p.flush(60)
    p.close()


class Console:
    """One browser page on a node's console, recording every console error and page error."""

    def __init__(self, browser, url: str):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.errors: list[str] = []
        # With the URL of a resource that failed to load (the message itself does not name it).
        self.page.on("console", lambda m: m.type == "error"
                     and self.errors.append(f"{m.text} {m.location.get('url', '')}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready=true]", timeout=15000)

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text()

    def wait(self, js_predicate: str, timeout: float, what: str):
        """Waits until `js_predicate` (a JS expression) is truthy in the page; returns its value."""
        return wait_until(lambda: self.page.evaluate(js_predicate), timeout, what, interval=0.1)

    def shot(self, panel: str, name: str = "") -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name or panel}.png"
        self.page.locator(f"#{panel}").screenshot(path=str(path))
        return path

    def confirm(self, click_selector: str, accept: bool = True) -> None:
        self.page.click(click_selector)
        self.page.wait_for_selector("#confirm-dialog[open]")
        self.page.click("#confirm-ok" if accept else "#confirm-cancel")

    def close(self) -> None:
        self.page.close()


def test_console_shows_the_cluster_on_every_node(cluster, browser):
    leader = cluster.wait_for_leader(voters=VOTERS)
    # The Raft leader sets the cluster id just after it is elected.
    health = wait_until(lambda: (h := cluster.health(leader))["cluster_id"] and h, 15, "the cluster id set")
    for i in VOTERS:
        c = Console(browser, f"{cluster.admin_url(i)}/")
        try:
            c.wait("document.querySelectorAll('#nodes-table tbody tr').length === 3", 10, "three nodes listed")
            assert c.text("#raft-leader") == f"node {leader}"
            assert c.text("#raft-term") == str(health["term"])
            assert c.text("#cluster-id") == health["cluster_id"]
            row = c.page.locator(f"#nodes-table tr[data-node='{leader}']")
            assert "leader" in row.locator(".role").inner_text()
            statuses = c.page.locator("#nodes-table .status").all_inner_texts()
            assert statuses == ["healthy"] * 3, statuses
            if i == 1:
                c.shot("cluster")
            assert c.errors == [], c.errors
        finally:
            c.close()


def test_partition_map_and_groups_follow_the_cluster(cluster, browser):
    topic = unique_topic("console-map")
    layout = create_topic(cluster, topic)
    produce(cluster, topic, 600)
    group = unique_topic("console-group")
    consumer = KafkaConsumer(topic, bootstrap_servers=cluster.bootstrap(1), group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False, client_id="console-it")
    c = Console(browser, f"{cluster.admin_url(1)}/")
    try:
        read = 0
        deadline = time.monotonic() + 60
        while read < 300 and time.monotonic() < deadline:
            read += sum(len(v) for v in consumer.poll(timeout_ms=500, max_records=300 - read).values())
        consumer.commit()  # committed at 300 of 600: the console must show a lag of 300 in all
        meta = {p["partition"]: p for p in cluster.node(1).get("/admin/partitions").json()["partitions"]
                if p["topic"] == topic}
        c.wait(f"document.querySelectorAll('#partition-map tr[data-topic=\"{topic}\"]').length === {PARTITIONS}",
               10, "every partition in the map")
        for p in range(PARTITIONS):
            row = c.page.locator(f"#partition-map tr[data-topic='{topic}'][data-partition='{p}']")
            leaders = row.locator(".cell.leader")
            assert leaders.count() == 1
            assert leaders.get_attribute("data-node") == str(meta[p]["leader"]) == str(layout[p][0])
            assert row.locator(".cell.insync").count() == 2, "RF 3: two followers in sync"
            assert "HW 100" in leaders.get_attribute("title"), leaders.get_attribute("title")
        c.page.hover(f"#partition-map tr[data-topic='{topic}'][data-partition='0'] .cell.leader")
        c.shot("partitions")

        sel = f"#groups-list .group[data-group='{group}']"
        c.wait(f"(() => {{ const g = document.querySelector(\"{sel}\"); return g && "
               f"g.querySelector('.assignment') && g.querySelector('.assignment').textContent.includes('{topic}') "
               f"&& [...g.querySelectorAll('.lag-value')].length === {PARTITIONS}; }})()",
               20, "the group with its member's assignment and per-partition lag")
        assert "console-it" in c.text(f"{sel} .members")
        lags = [int(v) for v in c.page.locator(f"{sel} .lag-value").all_inner_texts()]
        assert sum(lags) == 300, lags
        c.shot("groups")
        assert c.errors == [], c.errors
    finally:
        consumer.close()
        c.close()


def test_a_restarted_replica_shows_its_restarts_in_the_actor_tree(cluster, browser):
    topic = unique_topic("console-restart")
    create_topic(cluster, topic)
    replica = f"replica:{topic}-0"
    node = wait_until(lambda: find_actor(cluster.node(1).actors(), replica), 15, f"{replica} on node 1")
    before = node["restarts"]
    c = Console(browser, f"{cluster.admin_url(1)}/")
    try:
        sel = f"#actor-tree [data-actor='{replica}'] .restarts"
        c.wait(f"document.querySelector(\"{sel}\") !== null", 10, f"{replica} in the actor tree")
        assert int(c.page.locator(sel).first.get_attribute("data-restarts")) == before
        r = cluster.node(1).fail_point("replica_panic", topic, 0)
        assert r.status_code == 200 and r.json()["success"], r.text
        # The fail point fires on the replica's next append (node 1 leads partition 0).
        produce(cluster, topic, 1, partition=0)
        c.wait(f"(() => {{ const e = document.querySelector(\"{sel}\"); "
               f"return e && Number(e.dataset.restarts) >= {before + 1} && e.classList.contains('restarted'); }})()",
               30, f"{replica}'s restart count rising and highlighted")
        c.page.locator(f"#actor-tree [data-actor='{replica}']").first.scroll_into_view_if_needed()
        c.shot("actors")
        assert c.errors == [], c.errors
    finally:
        c.close()


def test_charts_draw_produce_requests_per_node(cluster, browser):
    topic = unique_topic("console-charts")
    create_topic(cluster, topic)
    stop = threading.Event()

    def produce():
        p = KafkaProducer(bootstrap_servers=cluster.bootstrap(1), acks=1, linger_ms=0)
        while not stop.is_set():
            p.send(topic, b"x" * 200)
            p.flush(10)
        p.close()

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    c = Console(browser, f"{cluster.admin_url(2)}/")
    try:
        c.wait("[...document.querySelectorAll('[data-chart=\"produce-rps\"] .legend-line span')]"
               ".some(s => Number(s.dataset.last) > 0) && "
               "document.querySelectorAll('[data-chart=\"produce-rps\"] polyline').length > 0", 30,
               "a node's produce rate above zero, drawn")
        assert c.page.locator("[data-chart='produce-rps'] .legend-line span").count() == 3, "one line per node"
        c.shot("charts")
        assert c.errors == [], c.errors
    finally:
        stop.set()
        t.join(30)
        c.close()


def test_actions_pause_add_resume_and_remove_a_node(cluster, browser):
    topic = unique_topic("console-grow")
    create_topic(cluster, topic)
    produce(cluster, topic, 3000, pad=500)
    leader = cluster.wait_for_leader(voters=VOTERS)
    c = Console(browser, f"{cluster.admin_url(1)}/")
    try:
        # Cancel changes nothing.
        c.confirm("#pause-button", accept=False)
        assert cluster.node(leader).get("/admin/rebalance").json()["paused"] is False

        c.confirm("#pause-button")
        c.wait("document.querySelector('#rebalance-status').textContent.includes('paused')", 10,
               "the rebalance panel showing paused")
        assert cluster.node(leader).get("/admin/rebalance").json()["paused"] is True

        cluster.node(4).start(wait=False)
        cluster.node(4).wait_ready(30)
        s = cluster.slots[4]
        c.page.fill("#add-node-form input[name=node_id]", "4")
        c.page.fill("#add-node-form input[name=kafka_addr]", s.addr(s.kafka))
        c.page.fill("#add-node-form input[name=wal_addr]", s.addr(s.wal))
        c.page.fill("#add-node-form input[name=raft_addr]", s.addr(s.raft))
        c.confirm("#add-node-button")
        c.wait("document.querySelector('#action-result').textContent.includes('added to the cluster as a voter')",
               90, "add-node's answer in the console")
        c.wait("document.querySelectorAll('#nodes-table tbody tr').length === 4", 15, "node 4 listed")
        # Paused: the plan is made but every move waits.
        c.wait(f"document.querySelectorAll('#moves-table tr[data-move^=\"{topic}/\"]').length > 0", 45,
               "the plan's moves listed while paused")
        phases = c.page.locator("#moves-table tr[data-move]").evaluate_all("rs => rs.map(r => r.dataset.phase)")
        assert set(phases) == {"queued"}, phases
        c.shot("rebalance", "rebalance-paused")

        c.confirm("#resume-button")
        seen: set[str] = set()
        copied_seen = 0

        def done() -> bool:
            nonlocal copied_seen
            rows = c.page.locator(f"#moves-table tr[data-move^='{topic}/']").evaluate_all(
                "rs => rs.map(r => [r.dataset.phase, Number(r.dataset.copied)])")
            seen.update(p for p, _ in rows)
            copied_seen = max([copied_seen] + [b for _, b in rows])
            in_map = c.page.locator(f"#partition-map tr[data-topic='{topic}'] .cell[data-node='4']").count()
            return bool(rows) and all(p == "done" for p, _ in rows) and in_map > 0

        wait_until(done, 120, "every move done and node 4 in the partition map", interval=0.1)
        assert seen - {"queued", "done"}, f"no move seen in progress: {seen}"
        assert copied_seen > 0, "no bytes copied shown"
        c.page.locator("#rebalance").scroll_into_view_if_needed()
        c.shot("rebalance")
        c.page.locator("#partitions").scroll_into_view_if_needed()
        c.shot("partitions", "partitions-after-add")

        # Remove node 4 again from its row.
        before_removal = len(c.errors)
        c.confirm("#nodes-table button.remove-node[data-node='4']")
        c.wait("document.querySelector('#action-result').textContent.includes('Node 4 is draining')", 30,
               "remove-node's answer in the console")
        wait_until(lambda: 4 not in cluster.health(leader)["cluster_nodes"], 180, "node 4 out of the voters")
        c.wait("document.querySelectorAll('#nodes-table tbody tr').length === 3", 15, "node 4 gone from the list")
        # A poll that listed node 4 just before it left relays its reads after: those are refused
        # (404, no longer a member) until the next poll drops it. Nothing else may fail.
        left_race = [e for e in c.errors[before_removal:] if " 404 " in e and "/admin/nodes/4/" in e]
        assert [e for e in c.errors if e not in left_race] == [], c.errors
    finally:
        c.close()


def test_console_assets_are_served_and_the_relay_is_narrow(cluster):
    base = cluster.admin_url(1)
    page = requests.get(f"{base}/", timeout=5)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/console/app.js" in page.text
    js = requests.get(f"{base}/console/app.js", timeout=5)
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    nodes = requests.get(f"{base}/admin/nodes", timeout=5).json()["nodes"]
    assert set(VOTERS) <= {n["id"] for n in nodes if n["role"] == "voter"}
    relayed = requests.get(f"{base}/admin/nodes/2/admin/health", timeout=5).json()
    assert relayed["node_id"] == 2
    # Only read endpoints and the console's actions are relayed; unknown nodes are named.
    r = requests.post(f"{base}/admin/nodes/2/admin/fail-points", data=json.dumps({}), timeout=5)
    assert r.status_code == 404 and "not relayed" in r.json()["message"]
    r = requests.get(f"{base}/admin/nodes/99/admin/health", timeout=5)
    assert r.status_code == 404 and "node 99 is not a member" in r.json()["message"]
    r = requests.post(f"{base}/admin/nodes/2/admin/add-node", data="{", timeout=10,
                      headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    print(f"console screenshots: {ARTIFACTS}")


def test_a_frozen_or_killed_node_shows_unreachable_and_comes_back(cluster, browser):
    """The console's host keeps rendering while one member does not answer its relayed requests:
    that member's row says unreachable, the others stay healthy, and it recovers by itself."""
    leader = cluster.wait_for_leader(voters=VOTERS)
    victim = max(i for i in VOTERS if i not in (1, leader))
    row_status = f"document.querySelector(\"#nodes-table tr[data-node='{victim}'] .status\")?.innerText"
    others = f"[...document.querySelectorAll('#nodes-table tr:not([data-node=\"{victim}\"]) .status')]" \
        ".map(e => e.innerText)"
    c = Console(browser, f"{cluster.admin_url(1)}/")
    try:
        c.wait(f"{row_status} === 'healthy'", 15, f"node {victim} healthy at first")
        for what, down, up in (("frozen", cluster.pause, cluster.resume), ("killed", cluster.kill, cluster.restart)):
            down(victim)
            try:
                c.wait(f"{row_status} === 'unreachable'", 20, f"node {victim} shown unreachable when {what}")
                assert c.page.evaluate(others) == ["healthy", "healthy"], f"the others while node {victim} is {what}"
                c.shot("cluster", f"cluster-node-{what}")
            finally:
                up(victim)
            c.wait(f"{row_status} === 'healthy'", 45, f"node {victim} healthy again after being {what}")
        # Failed relays may log network errors; the page's own code must never throw.
        assert not [e for e in c.errors if e.startswith("page error")], c.errors
    finally:
        c.close()


def test_a_secured_console_asks_for_the_admin_token_once_and_its_actions_carry_it(browser, tmp_path):
    token = "console-token-3c1d9e"
    b = Broker(tmp_path / "secured-console", name="secured-console",
               extra_env={"CHRONIK_SECURITY__ADMIN_TOKENS": token})
    b.start()
    c = None
    try:
        c = Console(browser, f"{b.admin_url}/")
        prompts: list[str] = []
        c.page.on("dialog", lambda d: (prompts.append(d.message), d.accept(token)))
        c.confirm("#pause-button")
        c.wait("document.getElementById('action-result').textContent.includes('paused')", 15,
               "the pause answered")
        assert prompts == ["This cluster's admin API needs a token. Admin token:"], prompts
        # /admin/rebalance shows it from the rebalancer's next tick.
        wait_until(lambda: b.get("/admin/rebalance").json()["paused"] is True, 10, "rebalancing paused")
        # The token is kept for the tab: the next action sends it without asking.
        c.confirm("#resume-button")
        c.wait("document.getElementById('action-result').textContent.includes('resumed')", 15,
               "the resume answered")
        assert len(prompts) == 1
        wait_until(lambda: b.get("/admin/rebalance").json()["paused"] is False, 10, "rebalancing resumed")
        # The browser reports the first, refused request; nothing else went wrong.
        assert all("401" in e for e in c.errors), c.errors
    finally:
        if c is not None:
            c.close()
        assert b.stop() == 0
