// Chronik console: polls the admin API once a second and redraws each panel.
//
// Everything comes from the node serving this page: its own /admin/health and /admin/nodes,
// and each member's endpoints relayed through /admin/nodes/{id}/{path}, so one URL shows the
// whole cluster. No library: plain DOM and SVG.
"use strict";

const POLL_MS = 1000;
const HISTORY = 300; // samples kept for the charts: five minutes at one per second
const COLORS = ["#1f6feb", "#2da44e", "#d4a72c", "#cf222e", "#8250df", "#1b7c83", "#bc4c00", "#6e7781"];

const state = {
  health: null, // this node's /admin/health
  nodes: [], // /admin/nodes
  perNode: new Map(), // id -> {health, partitions, groups, metrics, error}
  rebalance: null, // the Raft leader's /admin/rebalance
  actorNode: null, // whose actor tree is shown
  collapsed: new Set(), // actor-tree paths the user closed
  restarts: new Map(), // actor path -> restarts last seen, to flag a new restart
  freshRestarts: new Map(), // actor path -> time a restart was first seen
  moveCopied: new Map(), // move key -> [{t, bytes}] for the copy rate
  moves: new Map(), // move key -> last view of the move (kept once finished)
  samples: new Map(), // node id -> [{t, counters}] for the charts
};

// ---------------------------------------------------------------- fetching

// The admin token, when the cluster asks for one ([security] admin_tokens): asked for on the
// first 401, kept for this tab only, and sent with every request (the relay passes it on).
const TOKEN_KEY = "chronik-admin-token";
let adminToken = sessionStorage.getItem(TOKEN_KEY);
let tokenDeclined = false; // the user cancelled the prompt: polling does not ask again

async function call(path, init = {}) {
  const send = () => fetch(path, adminToken
    ? { ...init, headers: { ...init.headers, authorization: `Bearer ${adminToken}` } } : init);
  const sentWith = adminToken;
  let r = await send();
  // Another request may have got the token meanwhile; otherwise ask for it (once).
  if (r.status === 401 && (adminToken !== sentWith || askForToken(sentWith))) r = await send();
  return r;
}

function askForToken(refused) {
  if (tokenDeclined) return false;
  const entered = window.prompt(refused ? "That admin token was refused. Admin token:"
    : "This cluster's admin API needs a token. Admin token:");
  if (!entered || !entered.trim()) {
    tokenDeclined = true;
    return false;
  }
  adminToken = entered.trim();
  sessionStorage.setItem(TOKEN_KEY, adminToken);
  return true;
}

async function getJson(path) {
  const r = await call(path, { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

async function getText(path) {
  const r = await call(path, { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.text();
}

const relayed = (id, path) => `/admin/nodes/${id}/${path}`;

async function poll() {
  const [health, nodes] = await Promise.all([getJson("/admin/health"), getJson("/admin/nodes")]);
  state.health = health;
  state.nodes = nodes.nodes;
  const ids = state.nodes.map((n) => n.id);
  if (ids.length === 0) ids.push(health.node_id); // a node that has not joined a cluster yet
  await Promise.all(ids.map(pollNode));
  for (const id of [...state.perNode.keys()]) if (!ids.includes(id)) state.perNode.delete(id);
  const leader = health.leader_id ?? health.node_id;
  state.rebalance = await getJson(relayed(leader, "admin/rebalance")).catch(() => null);
  if (state.actorNode === null || !ids.includes(state.actorNode)) state.actorNode = health.node_id;
  state.actors = await getJson(relayed(state.actorNode, "admin/actors")).catch(() => null);
}

async function pollNode(id) {
  const entry = { error: null };
  const parts = await Promise.allSettled([
    getJson(relayed(id, "admin/health")),
    getJson(relayed(id, "admin/partitions")),
    getJson(relayed(id, "admin/groups")),
    getText(relayed(id, "metrics")),
  ]);
  [entry.health, entry.partitions, entry.groups, entry.metricsText] = parts.map((p) =>
    p.status === "fulfilled" ? p.value : null,
  );
  const failed = parts.find((p) => p.status === "rejected");
  if (failed) entry.error = String(failed.reason.message || failed.reason);
  if (entry.metricsText !== null) recordSample(id, parseMetrics(entry.metricsText));
  state.perNode.set(id, entry);
}

// ---------------------------------------------------------------- helpers

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function badge(text, kind) {
  return el("span", { class: `badge ${kind || ""}` }, text);
}

function fmtBytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function fmtNum(n, digits = 1) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(digits)}M`;
  if (Math.abs(n) >= 1e3) return `${(n / 1e3).toFixed(digits)}k`;
  return n.toFixed(n === Math.round(n) ? 0 : digits);
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// Prometheus text format: `name{label="v",...} value` lines; comments skipped.
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

// ---------------------------------------------------------------- cluster panel

function renderSummary() {
  const h = state.health;
  const summary = document.getElementById("summary");
  summary.replaceChildren(
    `cluster ${h.cluster_id ?? "(not initialized)"} · served by node ${h.node_id} · `,
    h.leader_id ? `Raft leader node ${h.leader_id}, term ${h.term}` : "no Raft leader",
  );
}

function renderCluster() {
  const h = state.health;
  const facts = document.getElementById("cluster-facts");
  facts.replaceChildren(
    el("span", {}, "Cluster id ", el("b", { id: "cluster-id" }, h.cluster_id ?? "—")),
    el("span", {}, "Raft leader ", el("b", { id: "raft-leader" }, h.leader_id ? `node ${h.leader_id}` : "none")),
    el("span", {}, "Term ", el("b", { id: "raft-term" }, h.term)),
    el("span", {}, "Voters ", el("b", {}, h.cluster_nodes.join(", ") || "—")),
    el("span", {}, "Learners ", el("b", {}, h.learners.join(", ") || "—")),
  );
  const rows = state.nodes.map((n) => {
    const node = state.perNode.get(n.id) || {};
    const nh = node.health;
    const isLeader = h.leader_id === n.id;
    let status;
    if (!nh) status = badge("unreachable", "bad");
    else status = badge(nh.status, nh.status === "healthy" ? "good" : "warn");
    const role = [badge(n.role, n.role === "voter" ? "" : "warn")];
    if (isLeader) role.push(" ", badge("leader", "leader"));
    if (n.draining) role.push(" ", badge("draining", "warn"));
    const remove = el("button", {
      type: "button",
      class: "remove-node",
      "data-node": n.id,
      disabled: n.draining || undefined,
      onclick: () => removeNode(n.id),
    }, "Remove…");
    return el("tr", { "data-node": n.id, class: isLeader ? "is-leader" : "" },
      el("td", {}, `node ${n.id}`), el("td", { class: "role" }, role), el("td", { class: "status" }, status),
      el("td", {}, nh ? nh.term : "—"), el("td", {}, n.kafka), el("td", {}, n.raft), el("td", {}, n.wal),
      el("td", {}, el("a", { href: `http://${n.admin}/` }, n.admin)), el("td", {}, remove));
  });
  fill(document.querySelector("#nodes-table tbody"), rows);
}

// ---------------------------------------------------------------- partition map

// The metadata view every node shares, taken from the leader when it answers, else any node.
function metadataPartitions() {
  const order = [state.health.leader_id, ...state.perNode.keys()];
  for (const id of order) {
    const p = state.perNode.get(id)?.partitions;
    if (p) return p.partitions;
  }
  return [];
}

// The replica a node reports for a partition, if it hosts one.
function replicaOn(id, topic, partition) {
  const list = state.perNode.get(id)?.partitions?.partitions || [];
  return list.find((p) => p.topic === topic && p.partition === partition) || null;
}

function renderPartitionMap() {
  const showInternal = document.getElementById("show-internal").checked;
  const ids = state.nodes.map((n) => n.id);
  const table = document.getElementById("partition-map");
  table.tHead.replaceChildren(el("tr", {}, el("th", {}, "Topic"), el("th", {}, "Partition"),
    el("th", {}, "Epoch"), ...ids.map((id) => el("th", { "data-node": id }, `node ${id}`))));
  const rows = metadataPartitions()
    .filter((p) => showInternal || !p.topic.startsWith("__"))
    .map((p) => el("tr", { "data-topic": p.topic, "data-partition": p.partition },
      el("td", {}, p.topic), el("td", {}, p.partition), el("td", {}, p.leader_epoch),
      ...ids.map((id) => el("td", {}, partitionCell(p, id)))));
  fill(table.tBodies[0], rows);
}

function partitionCell(p, id) {
  if (!p.replicas.includes(id)) return "";
  const here = replicaOn(id, p.topic, p.partition);
  const offline = here?.offline || (state.perNode.get(id) && !state.perNode.get(id).health);
  let kind;
  let text;
  if (offline) [kind, text] = ["offline", "✕"];
  else if (p.leader === id) [kind, text] = ["leader", "L"];
  else if (p.isr.includes(id)) [kind, text] = ["insync", "F"];
  else [kind, text] = ["catching-up", "F"];
  const title = [`node ${id}: ${kind.replace("-", " ")}`];
  if (here?.replica) {
    title.push(`LEO ${here.log_end_offset}`, `HW ${here.high_watermark}`, `log start ${here.log_start_offset}`,
      `size ${fmtBytes(here.replica.size_bytes)}`);
  }
  if (here?.offline) title.push(`offline: ${here.offline.reason}`);
  return el("span", { class: `cell ${kind}`, "data-node": id, "data-state": kind, title: title.join("\n") }, text);
}

// ---------------------------------------------------------------- rebalance

function moveKey(m) {
  return `${m.topic}/${m.partition}`;
}

// Bytes a move has copied so far: the new replicas' log sizes on their nodes, against the
// leader's log size for each of them.
function moveProgress(m) {
  const added = m.to.filter((id) => !m.from.includes(id));
  const meta = metadataPartitions().find((p) => p.topic === m.topic && p.partition === m.partition);
  const leader = meta ? replicaOn(meta.leader, m.topic, m.partition) : null;
  const target = leader?.replica ? leader.replica.size_bytes * added.length : null;
  let copied = 0;
  for (const id of added) copied += replicaOn(id, m.topic, m.partition)?.replica?.size_bytes || 0;
  return { copied, target };
}

function copyRate(key, copied) {
  const now = Date.now();
  const hist = state.moveCopied.get(key) || [];
  hist.push({ t: now, bytes: copied });
  while (hist.length > 1 && now - hist[0].t > 5000) hist.shift();
  state.moveCopied.set(key, hist);
  if (hist.length < 2) return null;
  const first = hist[0];
  const dt = (now - first.t) / 1000;
  return dt > 0 ? Math.max(0, (copied - first.bytes) / dt) : null;
}

function renderRebalance() {
  const r = state.rebalance;
  const facts = document.getElementById("rebalance-facts");
  if (!r) {
    facts.replaceChildren(el("span", { class: "muted" }, "the Raft leader's rebalancer did not answer"));
    fill(document.querySelector("#moves-table tbody"), []);
    return;
  }
  const running = r.moves.filter((m) => m.phase !== "done" && m.phase !== "queued").length;
  const status = r.paused ? badge("paused", "warn")
    : r.moves.length === 0 ? badge("balanced", "good")
      : r.complete ? badge("complete", "good") : badge("moving", "leader");
  facts.replaceChildren(
    el("span", { id: "rebalance-status" }, "Status ", status),
    el("span", {}, "Placement nodes ", el("b", {}, r.voters.join(", ") || "—")),
    el("span", {}, "Draining ", el("b", {}, r.draining.join(", ") || "none")),
    el("span", {}, "Moves ", el("b", { id: "moves-count" }, `${r.moves.length} planned, ${running} running`)),
  );
  document.getElementById("pause-button").disabled = r.paused;
  document.getElementById("resume-button").disabled = !r.paused;
  // A finished plan disappears from the rebalancer; keep its moves here, marked done, until
  // the next plan starts.
  const live = new Set(r.moves.map(moveKey));
  const newPlan = [...live].some((k) => !state.moves.has(k));
  if (newPlan && [...state.moves.values()].every((m) => m.phase === "done")) state.moves.clear();
  for (const [key, m] of state.moves) if (!live.has(key)) m.phase = "done";
  for (const m of r.moves) state.moves.set(moveKey(m), { ...m });
  const rows = [...state.moves.entries()].map(([key, m]) => {
    const { copied, target } = moveProgress(m);
    // Bytes flow only while the new replicas copy; other phases have no rate to show.
    const copying = m.phase === "adding" || m.phase === "catching_up";
    const rate = copying ? copyRate(key, copied) : null;
    const pct = target ? Math.min(100, (100 * copied) / target) : m.phase === "done" ? 100 : 0;
    const attrs = { class: m.phase === "done" ? "done" : "", "data-move": key, "data-phase": m.phase, "data-copied": copied };
    return el("tr", attrs,
      el("td", {}, m.topic), el("td", {}, m.partition), el("td", {}, m.from.join(", ")), el("td", {}, m.to.join(", ")),
      el("td", { class: "phase" }, m.phase.replace("_", " ")),
      el("td", {}, el("span", { class: "progress" }, el("span", { style: `width:${pct.toFixed(0)}%` })),
        `${fmtBytes(copied)} / ${fmtBytes(target)}`),
      el("td", {}, rate === null ? "—" : `${fmtBytes(rate)}/s`));
  });
  fill(document.querySelector("#moves-table tbody"), rows);
}

// ---------------------------------------------------------------- actor tree

function renderActors() {
  const picker = document.getElementById("actor-nodes");
  const ids = state.nodes.length ? state.nodes.map((n) => n.id) : [state.health.node_id];
  picker.replaceChildren(...ids.map((id) => el("button", {
    type: "button",
    class: id === state.actorNode ? "selected" : "",
    "data-node": id,
    onclick: () => { state.actorNode = id; refresh(); },
  }, `node ${id}`)));
  const tree = document.getElementById("actor-tree");
  if (!state.actors) {
    tree.replaceChildren(el("span", { class: "muted" }, `node ${state.actorNode} did not answer`));
    return;
  }
  tree.replaceChildren(actorNode(state.actors, `${state.actorNode}`));
}

function actorNode(a, parentPath) {
  const path = `${parentPath}/${a.name}`;
  const before = state.restarts.get(path);
  if (before !== undefined && a.restarts > before) state.freshRestarts.set(path, Date.now());
  state.restarts.set(path, a.restarts);
  const fresh = Date.now() - (state.freshRestarts.get(path) || 0) < 10000;
  const restarts = el("span", {
    class: `restarts ${a.restarts > 0 ? "restarted" : ""} ${fresh ? "fresh-restart" : ""}`,
    "data-restarts": a.restarts,
  }, `restarts ${a.restarts}`);
  const line = [
    el("span", { class: "name" }, a.name),
    el("span", { class: "meta" }, a.role, " · ", a.status, " · ", restarts, " · ", `mailbox ${a.mailbox_len}`),
  ];
  const attrs = { "data-actor": a.name, "data-path": path };
  if (!a.children.length) return el("div", { class: "leaf", ...attrs }, line);
  const details = el("details", attrs, el("summary", {}, line, el("span", { class: "meta" }, `(${a.children.length})`)),
    ...a.children.map((c) => actorNode(c, path)));
  details.open = !state.collapsed.has(path);
  details.addEventListener("toggle", () => {
    if (details.open) state.collapsed.delete(path);
    else state.collapsed.add(path);
  });
  return details;
}

// ---------------------------------------------------------------- groups

function renderGroups() {
  const groups = [];
  for (const [id, node] of state.perNode) for (const g of node.groups?.groups || []) groups.push({ ...g, coordinator: id });
  groups.sort((a, b) => a.group_id.localeCompare(b.group_id));
  const list = document.getElementById("groups-list");
  if (!groups.length) {
    list.replaceChildren(el("span", { class: "muted" }, "no consumer groups"));
    return;
  }
  list.replaceChildren(...groups.map((g) => el("div", { class: "group", "data-group": g.group_id },
    el("h3", {}, g.group_id, " ", badge(g.state, g.state === "Stable" ? "good" : "warn"),
      el("span", { class: "meta muted" }, ` coordinator node ${g.coordinator} · total lag ${g.total_lag}`)),
    el("table", { class: "members" },
      el("thead", {}, el("tr", {}, el("th", {}, "Member"), el("th", {}, "Client"), el("th", {}, "Host"),
        el("th", {}, "Assignment"))),
      el("tbody", {}, g.members.length ? g.members.map((m) => el("tr", {},
        el("td", {}, m.group_instance_id || m.member_id), el("td", {}, m.client_id), el("td", {}, m.client_host),
        el("td", { class: "assignment" }, Object.entries(m.assignment).map(([t, ps]) => `${t}: ${ps.join(",")}`).join("; ") || "—"),
      )) : el("tr", {}, el("td", { colspan: 4, class: "muted" }, "no members")))),
    el("table", { class: "lag" },
      el("thead", {}, el("tr", {}, el("th", {}, "Topic"), el("th", {}, "Partition"), el("th", {}, "Committed"),
        el("th", {}, "High watermark"), el("th", {}, "Lag"))),
      el("tbody", {}, g.partitions.map((p) => el("tr", { "data-topic": p.topic, "data-partition": p.partition },
        el("td", {}, p.topic), el("td", {}, p.partition), el("td", {}, p.committed_offset),
        el("td", {}, p.high_watermark ?? "—"), el("td", { class: "lag-value" }, p.lag ?? "—"))))),
  )));
}

// ---------------------------------------------------------------- charts

// The counters the charts derive rates from, summed over label values where there are several.
function counters(metrics) {
  const c = { produceReq: 0, fetchReq: 0, produceBytes: 0, fetchBytes: 0, buckets: { Produce: {}, Fetch: {} } };
  for (const m of metrics) {
    if (m.name === "chronik_requests_total" && m.labels.api === "Produce") c.produceReq += m.value;
    else if (m.name === "chronik_requests_total" && m.labels.api === "Fetch") c.fetchReq += m.value;
    else if (m.name === "chronik_produce_bytes_total") c.produceBytes += m.value;
    else if (m.name === "chronik_fetch_bytes_total") c.fetchBytes += m.value;
    else if (m.name === "chronik_request_duration_seconds_bucket" && c.buckets[m.labels.api]) {
      const b = c.buckets[m.labels.api];
      b[m.labels.le] = (b[m.labels.le] || 0) + m.value;
    }
  }
  return c;
}

function recordSample(id, metrics) {
  const list = state.samples.get(id) || [];
  list.push({ t: Date.now(), c: counters(metrics) });
  while (list.length > HISTORY + 1) list.shift();
  state.samples.set(id, list);
}

// A latency quantile between two samples, from the histogram's cumulative bucket deltas
// (the bucket's upper bound, as Prometheus' histogram_quantile would without interpolation).
function quantile(prev, cur, q) {
  const les = Object.keys(cur).sort((a, b) => Number(a) - Number(b));
  const total = (cur["+Inf"] || 0) - (prev["+Inf"] || 0);
  if (total <= 0) return null;
  for (const le of les) {
    if ((cur[le] || 0) - (prev[le] || 0) >= q * total) return le === "+Inf" ? null : Number(le) * 1000;
  }
  return null;
}

const SERIES = [
  { id: "produce-rps", title: "Produce requests/s", f: (a, b, dt) => (b.produceReq - a.produceReq) / dt },
  { id: "fetch-rps", title: "Fetch requests/s", f: (a, b, dt) => (b.fetchReq - a.fetchReq) / dt },
  { id: "produce-bps", title: "Produce bytes/s", bytes: true, f: (a, b, dt) => (b.produceBytes - a.produceBytes) / dt },
  { id: "fetch-bps", title: "Fetch bytes/s", bytes: true, f: (a, b, dt) => (b.fetchBytes - a.fetchBytes) / dt },
  { id: "produce-p99", title: "Produce latency p99 (ms)", f: (a, b) => quantile(a.buckets.Produce, b.buckets.Produce, 0.99) },
  { id: "fetch-p99", title: "Fetch latency p99 (ms, includes long-poll waits)", f: (a, b) => quantile(a.buckets.Fetch, b.buckets.Fetch, 0.99) },
];

function series(id, def) {
  const s = state.samples.get(id) || [];
  const points = [];
  for (let i = 1; i < s.length; i++) {
    const dt = (s[i].t - s[i - 1].t) / 1000;
    if (dt <= 0) continue;
    const v = def.f(s[i - 1].c, s[i].c, dt);
    if (v !== null && Number.isFinite(v)) points.push({ t: s[i].t, v: Math.max(0, v) });
  }
  return points;
}

function renderCharts() {
  const grid = document.getElementById("chart-grid");
  const ids = [...state.samples.keys()].filter((id) => state.perNode.has(id)).sort((a, b) => a - b);
  const now = Date.now();
  // The x axis runs from the oldest sample kept (at most five minutes back) to now.
  const oldest = Math.min(now - 10000, ...ids.map((id) => state.samples.get(id)[0]?.t ?? now));
  const t0 = Math.max(now - HISTORY * 1000, oldest);
  grid.replaceChildren(...SERIES.map((def) => {
    const lines = ids.map((id, i) => ({ id, color: COLORS[i % COLORS.length], pts: series(id, def) }));
    const max = Math.max(1e-9, ...lines.flatMap((l) => l.pts.map((p) => p.v)));
    const W = 360;
    const H = 150;
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("preserveAspectRatio", "none");
    for (const l of lines) {
      if (l.pts.length < 2) continue;
      const poly = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      const pts = l.pts.map((p) => `${(((p.t - t0) / (now - t0)) * W).toFixed(1)},${(H - 4 - (p.v / max) * (H - 12)).toFixed(1)}`);
      poly.setAttribute("points", pts.join(" "));
      poly.setAttribute("fill", "none");
      poly.setAttribute("stroke", l.color);
      poly.setAttribute("stroke-width", "1.5");
      poly.setAttribute("vector-effect", "non-scaling-stroke");
      poly.dataset.node = l.id;
      svg.append(poly);
    }
    const fmt = (v) => (def.bytes ? `${fmtBytes(v)}/s` : fmtNum(v));
    const legend = lines.map((l) => {
      const last = l.pts.length ? l.pts[l.pts.length - 1].v : null;
      return el("span", { style: `color:${l.color}`, "data-node": l.id, "data-last": last ?? "" },
        `node ${l.id}: ${last === null ? "—" : fmt(last)}`);
    });
    return el("div", { class: "chart", "data-chart": def.id },
      el("h3", {}, def.title, el("span", { class: "muted" }, ` · max ${fmt(max === 1e-9 ? 0 : max)}`)), svg,
      el("div", { class: "legend-line" }, legend));
  }));
}

// ---------------------------------------------------------------- actions

function confirmAction(text) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

function showResult(ok, message) {
  const out = document.getElementById("action-result");
  out.className = `action-result ${ok ? "ok" : "failed"}`;
  out.textContent = message;
}

// Membership changes go to the Raft leader (relayed), which validates them as the REST API does.
async function leaderAction(path, body) {
  const leader = state.health?.leader_id;
  if (!leader) return showResult(false, "there is no Raft leader to ask right now");
  tokenDeclined = false; // an action the user asked for may ask for the token again
  try {
    const r = await call(relayed(leader, path), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body === undefined ? "" : JSON.stringify(body),
    });
    const answer = await r.json().catch(() => ({ success: false, message: `HTTP ${r.status}` }));
    showResult(r.ok && answer.success, answer.message);
  } catch (e) {
    showResult(false, String(e));
  }
  refresh();
}

async function addNode(event) {
  event.preventDefault();
  const form = event.target;
  const body = {
    node_id: Number(form.node_id.value),
    kafka_addr: form.kafka_addr.value.trim(),
    wal_addr: form.wal_addr.value.trim(),
    raft_addr: form.raft_addr.value.trim(),
  };
  if (!(await confirmAction(`Add node ${body.node_id} (Kafka ${body.kafka_addr}, Raft ${body.raft_addr}) to the cluster? ` +
    "It joins as a learner, becomes a voter once caught up, and then takes its share of the partitions."))) return;
  showResult(true, `adding node ${body.node_id}…`);
  await leaderAction("admin/add-node", body);
}

async function removeNode(id) {
  if (!(await confirmAction(`Remove node ${id}? Its replicas move to the other nodes first; then it leaves the cluster.`))) return;
  await leaderAction("admin/remove-node", { node_id: id });
}

async function setPaused(paused) {
  const text = paused ? "Pause rebalancing? Moves stop in their current phase until resumed."
    : "Resume rebalancing? Moves continue from where they stopped.";
  if (!(await confirmAction(text))) return;
  await leaderAction(paused ? "admin/rebalance/pause" : "admin/rebalance/resume");
}

// ---------------------------------------------------------------- main loop

let inFlight = null;

function refresh() {
  if (inFlight) return inFlight;
  inFlight = poll()
    .then(() => {
      for (const render of [renderSummary, renderCluster, renderPartitionMap, renderRebalance, renderActors,
        renderGroups, renderCharts]) render();
      const f = document.getElementById("freshness");
      f.textContent = `updated ${new Date().toLocaleTimeString()}`;
      f.classList.remove("stale");
      document.body.dataset.ready = "true";
    })
    .catch((e) => {
      const f = document.getElementById("freshness");
      f.textContent = `not updated: ${e.message}`;
      f.classList.add("stale");
    })
    .finally(() => { inFlight = null; });
  return inFlight;
}

document.getElementById("add-node-form").addEventListener("submit", addNode);
document.getElementById("pause-button").addEventListener("click", () => setPaused(true));
document.getElementById("resume-button").addEventListener("click", () => setPaused(false));
document.getElementById("show-internal").addEventListener("change", renderPartitionMap);
refresh();
setInterval(refresh, POLL_MS);
