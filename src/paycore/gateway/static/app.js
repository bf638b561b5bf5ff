// paycore gateway dashboard: session login, live transactions over server-sent events,
// counters and a per-second chart of decisions. No framework, no build step.
"use strict";

const BASE = location.pathname.replace(/\/dashboard\/?$/, "");
const CHART_SECONDS = 60;
const MAX_ROWS = 200;
const RECONNECT_MS = 5000;

const state = {
  csrf: null,
  source: null,
  transactions: new Map(), // id -> transaction
  decidedPerSecond: new Map(), // unix second -> {approved, rejected}
  selected: null,
};

const $ = (id) => document.getElementById(id);

function show(view) {
  $("login-view").hidden = view !== "login";
  $("dashboard-view").hidden = view !== "dashboard";
  $("who").hidden = view !== "dashboard";
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (options.body) headers["content-type"] = "application/json";
  if (state.csrf) headers["x-csrf-token"] = state.csrf;
  return fetch(BASE + path, { credentials: "same-origin", ...options, headers });
}

async function boot() {
  const answer = await api("/dashboard/session");
  if (answer.ok) start(await answer.json());
  else show("login");
}

async function login(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  const answer = await api("/dashboard/login", {
    method: "POST",
    body: JSON.stringify({ secret: $("secret").value }),
  });
  $("secret").value = "";
  if (!answer.ok) {
    const problem = await answer.json().catch(() => ({}));
    $("login-error").textContent =
      answer.status === 401 ? "Invalid secret." : problem.detail || "Login failed.";
    return;
  }
  start(await answer.json());
}

async function logout() {
  await api("/dashboard/logout", { method: "POST" });
  if (state.source) state.source.close();
  state.source = null;
  state.csrf = null;
  state.transactions.clear();
  state.decidedPerSecond.clear();
  $("transactions").tBodies[0].replaceChildren();
  closeDetail();
  show("login");
}

function start(session) {
  state.csrf = session.csrf;
  $("account-name").textContent = session.account.name;
  show("dashboard");
  connect();
}

function connect() {
  const source = new EventSource(BASE + "/dashboard/events");
  state.source = source;
  source.addEventListener("open", () => {
    setLive(true);
    loadRecent();
  });
  source.addEventListener("error", () => {
    setLive(false);
    // a stream the server refused (429: the account has too many open) is not retried by
    // the browser itself
    if (source.readyState === EventSource.CLOSED) reconnectLater(source);
  });
  source.addEventListener("stats", (e) => renderStats(JSON.parse(e.data)));
  source.addEventListener("transactions", (e) => JSON.parse(e.data).forEach(upsert));
  source.addEventListener("resync", () => loadRecent());
}

async function reconnectLater(source) {
  await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  if (state.source !== source) return; // logged out meanwhile
  const answer = await api("/dashboard/session");
  if (answer.status === 401) return show("login");
  connect();
}

function setLive(on) {
  const badge = $("live");
  badge.textContent = on ? "live" : "reconnecting…";
  badge.className = "live " + (on ? "on" : "off");
}

async function loadRecent() {
  const answer = await api("/transactions?limit=" + MAX_ROWS);
  if (answer.status === 401) return show("login");
  if (!answer.ok) return;
  const page = await answer.json();
  page.data.reverse().forEach(upsert);
}

const RANK = { pending: 0, approved: 1, rejected: 1 };

function upsert(tx) {
  const known = state.transactions.get(tx.id);
  if (known && RANK[known.status] > RANK[tx.status]) return; // never go back to pending
  state.transactions.set(tx.id, tx);
  if (tx.decided_at && (!known || known.status !== tx.status)) countDecision(tx);
  renderRow(tx, Boolean(known));
  if (state.selected === tx.id) renderDetail(tx);
}

function countDecision(tx) {
  const second = Math.floor(Date.parse(tx.decided_at) / 1000);
  const bucket = state.decidedPerSecond.get(second) || { approved: 0, rejected: 0 };
  bucket[tx.status] += 1;
  state.decidedPerSecond.set(second, bucket);
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function statusLabel(status) {
  const span = document.createElement("span");
  span.className = "status " + status;
  span.textContent = status;
  return span;
}

function renderRow(tx, changed) {
  const body = $("transactions").tBodies[0];
  let row = body.querySelector(`tr[data-id="${CSS.escape(tx.id)}"]`);
  const fresh = !row;
  if (fresh) {
    row = document.createElement("tr");
    row.dataset.id = tx.id;
    row.addEventListener("click", () => openDetail(tx.id));
  }
  const status = document.createElement("td");
  status.appendChild(statusLabel(tx.status));
  row.dataset.status = tx.status;
  row.replaceChildren(
    cell(new Date(tx.created_at).toLocaleTimeString()),
    cell(tx.id.slice(-12)),
    cell(`${tx.card.brand || "unknown"} •••• ${tx.card.last4}`),
    cell(Number(tx.amount).toFixed(2), "num"),
    status,
    cell(tx.error_message, "message"),
  );
  if (fresh) insertSorted(body, row);
  if (changed || fresh) {
    row.classList.remove("flash");
    void row.offsetWidth; // restart the animation
    row.classList.add("flash");
  }
  while (body.rows.length > MAX_ROWS) {
    const last = body.rows[body.rows.length - 1];
    state.transactions.delete(last.dataset.id);
    last.remove();
  }
  $("empty").hidden = body.rows.length > 0;
}

function insertSorted(body, row) {
  // newest first: ids are time-ordered (UUIDv7)
  for (const other of body.rows) {
    if (other.dataset.id < row.dataset.id) return body.insertBefore(row, other);
  }
  body.appendChild(row);
}

function renderStats(stats) {
  const total = stats.pending.count + stats.approved.count + stats.rejected.count;
  $("count-total").textContent = total;
  $("count-pending").textContent = stats.pending.count;
  $("count-approved").textContent = stats.approved.count;
  $("count-rejected").textContent = stats.rejected.count;
  $("amount-approved").textContent = Number(stats.approved.amount).toFixed(2);
}

function openDetail(id) {
  state.selected = id;
  for (const row of $("transactions").tBodies[0].rows) {
    row.classList.toggle("selected", row.dataset.id === id);
  }
  renderDetail(state.transactions.get(id));
  $("detail").hidden = false;
  document.querySelector(".columns").classList.add("with-detail");
}

function closeDetail() {
  state.selected = null;
  $("detail").hidden = true;
  document.querySelector(".columns").classList.remove("with-detail");
}

function renderDetail(tx) {
  const fields = [
    ["id", tx.id],
    ["status", tx.status],
    ["message", tx.error_message || "—"],
    ["amount", Number(tx.amount).toFixed(2)],
    ["brand", tx.card.brand || "unknown"],
    ["card", "•••• " + tx.card.last4],
    ["expiry", `${String(tx.card.exp_month).padStart(2, "0")}/${tx.card.exp_year}`],
    ["holder", tx.card.holder ?? "—"],
    ["fingerprint", tx.card.fingerprint ?? "—"],
    ["created", tx.created_at],
    ["decided", tx.decided_at || "—"],
  ];
  const list = $("detail-fields");
  list.replaceChildren();
  for (const [name, value] of fields) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    if (name === "status") dd.appendChild(statusLabel(value));
    else dd.textContent = value;
    dd.dataset.field = name;
    list.append(dt, dd);
  }
}

function drawChart() {
  const canvas = $("chart");
  if (!canvas || $("dashboard-view").hidden) return;
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (canvas.width !== width * ratio) {
    canvas.width = width * ratio;
    canvas.height = height * ratio;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const now = Math.floor(Date.now() / 1000);
  for (const second of state.decidedPerSecond.keys()) {
    if (second < now - CHART_SECONDS - 5) state.decidedPerSecond.delete(second);
  }
  const seconds = [];
  for (let s = now - CHART_SECONDS + 1; s <= now; s++) {
    seconds.push(state.decidedPerSecond.get(s) || { approved: 0, rejected: 0 });
  }
  const peak = Math.max(1, ...seconds.map((b) => Math.max(b.approved, b.rejected)));
  const left = 40, bottom = height - 20, top = 10, right = width - 10;
  ctx.strokeStyle = "#e3e6ea";
  ctx.fillStyle = "#6b7480";
  ctx.font = "11px system-ui, sans-serif";
  for (const fraction of [0, 0.5, 1]) {
    const y = bottom - (bottom - top) * fraction;
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(right, y);
    ctx.stroke();
    ctx.fillText(String(Math.round(peak * fraction)), 4, y + 4);
  }
  ctx.fillText("-60 s", left, height - 4);
  ctx.fillText("now", right - 22, height - 4);
  const step = (right - left) / CHART_SECONDS;
  const bar = Math.max(1, step / 2 - 1);
  seconds.forEach((bucket, i) => {
    const x = left + i * step;
    const approvedHeight = ((bottom - top) * bucket.approved) / peak;
    const rejectedHeight = ((bottom - top) * bucket.rejected) / peak;
    ctx.fillStyle = "#1f9d55";
    ctx.fillRect(x, bottom - approvedHeight, bar, approvedHeight);
    ctx.fillStyle = "#d64545";
    ctx.fillRect(x + bar + 1, bottom - rejectedHeight, bar, rejectedHeight);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("detail-close").addEventListener("click", closeDetail);
  setInterval(drawChart, 1000);
  boot();
});
