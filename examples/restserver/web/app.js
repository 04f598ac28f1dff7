// The operator's page: the calls (pushed by GET /events), a call's live
// charts, actions and event log, the recordings, registrations and nodes.
// It uses only the public REST API (rest-api/..., POST with JSON, behind
// the admin's login like the page itself) and the event stream; nothing is
// fetched from anywhere else and there is no build step.
"use strict";

// --- Thresholds: a call crossing one gets a red badge in the calls table
// and a red band on the chart concerned. ---
const LOSS_PCT_MAX = 2;                 // packet loss over one second, audio or video
const KEYFRAME_INTERVAL_MAX_MS = 2000;  // time between the last two keyframes received
const OUTPUT_BAD_STATUSES = ["RTMP_CONNECTION_LOST", "RTMP_CONNECTION_FAILED", "FAILED", "RECONNECTING"];
// A freeze (freezes or frozenMs grew) or an output's reconnect is an
// instant: its badge stays this long after the last sample that showed it.
const ALERT_HOLD_MS = 10000;
// The charts span the last 3 minutes (a younger call's: its life, 20 s at
// least).
const CHART_WINDOW_MS = 180000;
const CHART_MIN_SPAN_MS = 20000;

const api = "rest-api";
const calls = new Map();    // callId -> the call's object (snapshot and "call" events)
const stats = new Map();    // callId -> [{t, s, alerts}] ("stats" events, the last CHART_WINDOW_MS)
const $ = (id) => document.getElementById(id);
let selected = null;        // the callId whose panel is open
let logEntries = [];        // the open call's event log
let logLoading = false;     // /call/log of the open call is under way: "log" events wait in logPending
let logPending = [];
let pushTimer = null;

function message(text, isError) {
  const m = $("message");
  m.textContent = text;
  m.className = isError ? "error" : "";
}

// post sends a REST request and returns the parsed answer; a failure
// throws an Error with the server's message and .status set.
async function post(path, body) {
  const resp = await fetch(api + path, {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body || {}),
  });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!resp.ok) {
    const err = new Error((data && data.message) || resp.statusText || ("HTTP " + resp.status));
    err.status = resp.status;
    throw err;
  }
  return data;
}

// act runs a call action and says how it went next to the call's panel
// and in the form's message line.
function act(what, path, body) {
  const m = $("detailMsg");
  return post(path, body).then((data) => {
    m.textContent = what + ": done";
    m.className = "";
    return data;
  }, (e) => {
    m.textContent = what + ": " + e.message;
    m.className = "error";
    message(what + ": " + e.message, true);
    return null;
  });
}

// findAll POSTs a find_all endpoint and returns [the list, why it is
// empty]: none when the server has none (404), off when it says 400 (the
// feature is off), else the server's message.
async function findAll(path, none, off) {
  try {
    const list = await post(path, {});
    return [Array.isArray(list) ? list : [], none];
  } catch (e) {
    return [[], e.status === 404 ? none : e.status === 400 ? off : e.message];
  }
}

function newCallId() {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  let s = "";
  const a = new Uint8Array(16);
  crypto.getRandomValues(a);
  for (const b of a) s += chars[b % chars.length];
  return s;
}

const finished = (c) => c.status === "FINISH" || c.status === "FAILED" || c.status === "BUSY";

// autoPlay is the call started from this page, autoPlayStream the stream
// of the demo's dial-in: each plays once it is answered.
let autoPlay = null;
let autoPlayStream = null;

$("startForm").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = {callId: newCallId()};
  for (const f of ["callee", "rtmpUrl", "rtmpStream", "toStream", "sipLogin", "sipAuthenticationName",
                   "sipPassword", "sipDomain", "sipOutboundProxy", "sipPort", "visibleName"]) {
    const v = $(f).value.trim();
    if (v !== "") body[f] = v;
  }
  body.hasAudio = String($("hasAudio").checked);
  body.hasVideo = String($("hasVideo").checked);
  body.sipRegisterRequired = String($("sipRegisterRequired").checked);
  $("startBtn").disabled = true;
  // Before the POST: the call may be answered before its response comes.
  autoPlay = body.callId;
  try {
    await post("/call/startup", body);
    message("call " + body.callId + " started");
    $("playStream").value = body.toStream || body.callId;
  } catch (e) {
    autoPlay = null;
    message(e.message, true);
  } finally {
    $("startBtn").disabled = false;
  }
});

// addCell appends a cell holding text (as text, never HTML) to the row tr;
// label is its column's name, shown before it when the table is a card.
function addCell(tr, text, cls, label) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  if (label) td.dataset.label = label;
  tr.appendChild(td);
  return td;
}

function dtmfPad(el, callId) {
  for (const d of "123456789*0#") {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = d;
    b.onclick = () => post("/call/send_dtmf", {callId: callId, dtmf: d, type: "RFC2833"}).catch((e) => message(e.message, true));
    el.appendChild(b);
  }
}

function render() {
  const tbody = $("calls");
  tbody.textContent = "";
  if (calls.size === 0) {
    const tr = document.createElement("tr");
    tr.innerHTML = '<td colspan="11"><small>no calls yet</small></td>';
    tbody.appendChild(tr);
    return;
  }
  for (const c of calls.values()) {
    const tr = document.createElement("tr");
    tr.dataset.callId = c.callId;
    if (c.callId === selected) tr.className = "selected";
    const cell = (text, cls, label) => addCell(tr, text, cls, label);
    cell(c.incoming ? "\u2199 in" : "\u2197 out", "dir" + (c.incoming ? " dir-in" : ""), "Dir");
    cell(c.callId, "call-id", "Call ID");
    cell(c.nodeId || "", "node", "Node");
    cell(c.caller, "", "Caller");
    cell(c.callee, "", "Callee");
    cell(c.status, "call-status status-" + c.status, "Status");
    cell(c.sipStatus || "", "", "SIP");
    cell(c.rtmpStreamStatus || "", "rtmp-status status-" + (c.rtmpStreamStatus || ""), "RTMP");
    const health = cell("", "health", "Health");
    fillHealth(health, c.callId);
    const dtmf = cell("", "dtmf", "DTMF");
    const act = cell("", "act");
    if (!finished(c)) {
      const pad = document.createElement("div");
      pad.className = "pad";
      dtmf.appendChild(pad);
      dtmfPad(pad, c.callId);
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = "Terminate";
      b.className = "terminate";
      b.onclick = () => post("/call/terminate", {callId: c.callId}).catch((e) => message(e.message, true));
      act.appendChild(b);
    }
    tr.addEventListener("click", (ev) => {
      if (ev.target.closest("button")) return;
      openCall(c.callId);
    });
    tbody.appendChild(tr);
  }
}

// --- Live stats: thresholds, badges and sparklines. ---

// alertsOf returns the thresholds the sample s crosses, prev being the
// sample before it (or null).
function alertsOf(s, prev) {
  const a = [];
  const v = s.video || {}, au = s.audio || {};
  const pv = (prev && prev.video) || {};
  if (prev && ((v.freezes || 0) > (pv.freezes || 0) || (v.frozenMs || 0) > (pv.frozenMs || 0))) a.push("freeze");
  if ((v.lossPct || 0) > LOSS_PCT_MAX || (au.lossPct || 0) > LOSS_PCT_MAX) a.push("loss");
  if ((v.keyframeIntervalMs || 0) > KEYFRAME_INTERVAL_MAX_MS) a.push("keyframe");
  for (const o of s.outputs || []) {
    const po = prev && (prev.outputs || []).find((x) => x.mediaSessionId === o.mediaSessionId);
    const bad = OUTPUT_BAD_STATUSES.some((st) => (o.status || "").includes(st));
    if (bad || (po && (o.reconnects || 0) > (po.reconnects || 0))) a.push("output:" + o.mediaSessionId);
  }
  return a;
}

// badges returns the call's crossed thresholds as [text, title] pairs:
// those of the last sample, and the instants (freeze, reconnect) of the
// last ALERT_HOLD_MS.
function badges(callId) {
  const out = [];
  const list = stats.get(callId) || [];
  const c = calls.get(callId);
  if (list.length > 0 && !(c && finished(c))) {
    const last = list[list.length - 1];
    const since = last.t - ALERT_HOLD_MS;
    const recent = (name) => list.some((x) => x.t >= since && x.alerts.some((a) => a === name || a.startsWith(name + ":")));
    const v = last.s.video || {}, au = last.s.audio || {};
    if (recent("freeze")) out.push(["freeze", "the video froze (" + (v.freezes || 0) + " freezes, " + (v.frozenMs || 0) + " ms frozen)"]);
    if (last.alerts.includes("loss")) out.push(["loss " + fmt(Math.max(v.lossPct || 0, au.lossPct || 0), 1) + "%", "packet loss above " + LOSS_PCT_MAX + " %"]);
    if (last.alerts.includes("keyframe")) out.push(["keyframes " + fmt((v.keyframeIntervalMs || 0) / 1000, 1) + " s", "keyframe interval above " + KEYFRAME_INTERVAL_MAX_MS / 1000 + " s"]);
    if (recent("output")) out.push(["output lost", "an RTMP output lost its connection, reconnected or failed"]);
  }
  if (c && !finished(c) && !out.some((b) => b[0] === "output lost") &&
      OUTPUT_BAD_STATUSES.some((st) => (c.rtmpStreamStatus || "").includes(st))) {
    out.push(["output lost", "RTMP: " + c.rtmpStreamStatus]);
  }
  return out;
}

function fillHealth(el, callId) {
  el.textContent = "";
  const list = badges(callId);
  const c = calls.get(callId);
  if (list.length === 0 && stats.has(callId) && c && !finished(c)) {
    const b = document.createElement("span");
    b.className = "badge ok";
    b.textContent = "ok";
    b.title = "no threshold crossed";
    el.appendChild(b);
  }
  for (const [text, title] of list) {
    const b = document.createElement("span");
    b.className = "badge";
    b.textContent = text;
    b.title = title;
    el.appendChild(b);
  }
}

function fmt(v, digits) {
  if (v == null || !isFinite(v)) return "–";
  return Number(v).toFixed(digits);
}

// The charts of a call: key, name, unit, digits, the value of a sample and
// the alert that marks it.
const CHARTS = [
  {key: "vkbps", name: "video in", unit: "kbps", digits: 0, get: (s) => s.video && s.video.kbps, alert: "freeze"},
  {key: "fps", name: "video fps", unit: "fps", digits: 1, get: (s) => s.video && s.video.fps, alert: "freeze"},
  {key: "akbps", name: "audio in", unit: "kbps", digits: 1, get: (s) => s.audio && s.audio.kbps},
  {key: "loss", name: "loss", unit: "%", digits: 1, alert: "loss",
   get: (s) => (s.audio || s.video) ? Math.max((s.audio && s.audio.lossPct) || 0, (s.video && s.video.lossPct) || 0) : null},
  {key: "jitter", name: "jitter", unit: "ms", digits: 0,
   get: (s) => (s.audio || s.video) ? Math.max((s.audio && s.audio.jitterMs) || 0, (s.video && s.video.jitterMs) || 0) : null},
  {key: "rtt", name: "RTT", unit: "ms", digits: 0, get: (s) => s.video ? s.video.rttMs : s.audio && s.audio.rttMs},
  {key: "kfi", name: "keyframe interval", unit: "s", digits: 2, alert: "keyframe",
   get: (s) => s.video && s.video.keyframeIntervalMs / 1000},
  {key: "av", name: "A/V offset", unit: "ms", digits: 0, get: (s) => s.avOffsetMs},
];

// outputCharts are the charts of the outputs the samples name: kbps and
// queue depth of each.
function outputCharts(list) {
  const seen = new Map();
  for (const x of list) {
    for (const o of x.s.outputs || []) seen.set(o.mediaSessionId, o);
  }
  const out = [];
  for (const [id, o] of seen) {
    // The call's own RTMP target is "rtmp"; a push is "push" and a few
    // characters of its mediaSessionId.
    const name = o.kind === "rtmp" && !o.primary ? "push " + id.slice(0, 6) : (o.kind || "out") + (o.primary ? "" : " " + id.slice(0, 6));
    const pick = (s) => (s.outputs || []).find((x) => x.mediaSessionId === id);
    out.push({key: "out-" + id + "-kbps", name: name + " out", unit: "kbps", digits: 0, alert: "output:" + id,
              get: (s) => { const p = pick(s); return p ? p.kbps : null; }});
    out.push({key: "out-" + id + "-queued", name: name + " queue", unit: "", digits: 0, alert: "output:" + id,
              get: (s) => { const p = pick(s); return p ? p.queued : null; }});
  }
  return out;
}

// sparkline draws points ({t, v, alert}) from t0 to now on canvas: a
// line, red bands where alert, a dot on the last point (red when it is an
// alert).
function sparkline(canvas, points, t0, now) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, w, h);
  canvas.dataset.points = String(points.length);
  if (points.length === 0) return;
  let lo = 0, hi = 0;
  for (const p of points) { lo = Math.min(lo, p.v); hi = Math.max(hi, p.v); }
  if (hi === lo) hi = lo + 1;
  const pad = 3 * dpr;
  const span = Math.max(1, now - t0);
  const x = (t) => (t - t0) / span * (w - 2 * pad) + pad;
  const y = (v) => h - pad - (v - lo) / (hi - lo) * (h - 2 * pad);
  // Alert bands: one second wide (a sample's span) at least.
  g.fillStyle = "rgba(192,57,43,0.22)";
  const band = Math.max(2 * dpr, (w - 2 * pad) * 1000 / span);
  for (const p of points) {
    if (p.alert) g.fillRect(x(p.t) - band, 0, band, h);
  }
  if (lo < 0) { // the zero line
    g.strokeStyle = "#ddd";
    g.lineWidth = dpr;
    g.beginPath();
    g.moveTo(pad, y(0));
    g.lineTo(w - pad, y(0));
    g.stroke();
  }
  g.strokeStyle = "#1565c0";
  g.lineWidth = 1.5 * dpr;
  g.lineJoin = "round";
  g.beginPath();
  let prevT = null;
  for (const p of points) {
    // A gap of more than 3 s (no samples: the call was held, the page was
    // away) breaks the line.
    if (prevT === null || p.t - prevT > 3000) g.moveTo(x(p.t), y(p.v));
    else g.lineTo(x(p.t), y(p.v));
    prevT = p.t;
  }
  g.stroke();
  const last = points[points.length - 1];
  g.fillStyle = last.alert ? "#c0392b" : "#1565c0";
  g.beginPath();
  g.arc(x(last.t), y(last.v), (last.alert ? 3.5 : 2.5) * dpr, 0, 2 * Math.PI);
  g.fill();
}

// drawCharts (re)draws the open call's charts, adding those of outputs
// that appeared.
function drawCharts() {
  if (!selected) return;
  const list = stats.get(selected) || [];
  const box = $("charts");
  const now = list.length > 0 ? Math.max(list[list.length - 1].t, Date.now() - 1000) : Date.now();
  const last = list.length > 0 ? list[list.length - 1] : null;
  // The time axis: the last CHART_WINDOW_MS, or since the first sample
  // (CHART_MIN_SPAN_MS at least) while the call is younger.
  const t0 = list.length > 0 ? Math.max(now - CHART_WINDOW_MS, Math.min(list[0].t, now - CHART_MIN_SPAN_MS)) : now - CHART_WINDOW_MS;
  for (const ch of CHARTS.concat(outputCharts(list))) {
    let el = box.querySelector('.chart[data-key="' + CSS.escape(ch.key) + '"]');
    if (!el) {
      el = document.createElement("div");
      el.className = "chart";
      el.dataset.key = ch.key;
      el.innerHTML = '<div class="chart-head"><span class="chart-name"></span><span class="chart-value"></span></div><canvas></canvas>';
      el.querySelector(".chart-name").textContent = ch.name;
      el.querySelector(".chart-name").title = ch.name;
      el.querySelector("canvas").setAttribute("role", "img");
      el.querySelector("canvas").setAttribute("aria-label", ch.name + ", the last minutes");
      box.appendChild(el);
    }
    const points = [];
    for (const x of list) {
      const v = ch.get(x.s);
      if (v == null || !isFinite(v)) continue;
      points.push({t: x.t, v: v, alert: !!ch.alert && x.alerts.some((a) => a === ch.alert)});
    }
    const cur = last ? ch.get(last.s) : null;
    // An output that was there and is no more (a push removed, a recording
    // stopped) keeps its history and says "ended".
    const ended = cur == null && points.length > 0 && ch.key.startsWith("out-");
    el.querySelector(".chart-value").textContent = ended ? "ended" : cur == null ? "–" : fmt(cur, ch.digits) + (ch.unit ? " " + ch.unit : "");
    el.classList.toggle("alert", points.length > 0 && points[points.length - 1].alert);
    sparkline(el.querySelector("canvas"), points, t0, now);
  }
}

function onStats(s) {
  if (!s || !s.callId) return;
  const t = s.t || Date.now();
  let list = stats.get(s.callId);
  if (!list) { list = []; stats.set(s.callId, list); }
  const prev = list.length > 0 ? list[list.length - 1].s : null;
  list.push({t: t, s: s, alerts: alertsOf(s, prev)});
  while (list.length > 0 && list[0].t < t - CHART_WINDOW_MS) list.shift();
  const cell = document.querySelector('#calls tr[data-call-id="' + CSS.escape(s.callId) + '"] td.health');
  if (cell) fillHealth(cell, s.callId);
  if (s.callId === selected) {
    fillHealth($("detailHealth"), selected);
    drawCharts();
    renderOutputs(s.outputs || []);
  }
}

// --- The call's panel. ---

function openCall(callId) {
  selected = callId;
  $("detail").hidden = false;
  $("detailId").textContent = callId;
  $("charts").textContent = "";
  $("viewerLinks").hidden = true;
  $("detailMsg").textContent = "";
  $("pushes").innerHTML = "<li><small>none</small></li>";
  for (const tr of $("calls").querySelectorAll("tr[data-call-id]")) tr.classList.toggle("selected", tr.dataset.callId === callId);
  renderDetail();
  drawCharts();
  loadLog(callId);
  loadPushes();
  clearInterval(pushTimer);
  pushTimer = setInterval(loadPushes, 2000);
  $("detail").scrollIntoView({behavior: "smooth", block: "start"});
}

function closeCall() {
  selected = null;
  clearInterval(pushTimer);
  $("detail").hidden = true;
  for (const tr of $("calls").querySelectorAll("tr.selected")) tr.classList.remove("selected");
}
$("detailClose").onclick = closeCall;

// renderDetail shows the open call's status and which actions apply.
function renderDetail() {
  const c = calls.get(selected);
  if (!c) return;
  const st = $("detailStatus");
  st.textContent = c.status;
  st.className = "call-status status-" + c.status;
  fillHealth($("detailHealth"), selected);
  // In a cluster, a call of another node has its stats on that node's
  // page only.
  const remote = selfNode && c.nodeId && c.nodeId !== selfNode ? " · live stats on node " + c.nodeId + "'s page" : "";
  $("detailPeers").firstChild.textContent = (c.incoming ? "from " + c.caller : "to " + c.callee) +
    (c.streamName ? " · stream " + c.streamName : "") + (c.rtmpStreamStatus ? " · RTMP " + c.rtmpStreamStatus : "") + remote;
  const ended = finished(c);
  for (const id of ["holdBtn", "unholdBtn", "recordBtn", "transferBtn", "soundBtn", "soundStopBtn", "pushBtn", "detailTerminate", "viewerBtn"]) {
    $(id).disabled = ended;
  }
  $("holdBtn").hidden = c.status === "HOLD" || !!c.held;
  $("unholdBtn").hidden = !($("holdBtn").hidden);
  $("recordBtn").textContent = c.recording ? "Stop recording" : "Record";
  $("recordBtn").classList.toggle("recording", !!c.recording);
  $("recordBtn").dataset.recording = c.recording ? "true" : "false";
  const pad = $("detailDtmf");
  if (ended) pad.textContent = "";
  else if (pad.dataset.callId !== c.callId || pad.childElementCount === 0) {
    pad.textContent = "";
    dtmfPad(pad, c.callId);
  }
  pad.dataset.callId = ended ? "" : c.callId;
}

$("holdBtn").onclick = () => act("hold", "/call/hold", {callId: selected});
$("unholdBtn").onclick = () => act("unhold", "/call/unhold", {callId: selected});
$("detailTerminate").onclick = () => act("terminate", "/call/terminate", {callId: selected});
$("transferBtn").onclick = () => {
  const target = $("transferTarget").value.trim();
  if (!target) { $("transferTarget").focus(); return; }
  act("transfer", "/call/transfer", {callId: selected, target: target});
};
$("recordBtn").onclick = async () => {
  const c = calls.get(selected);
  if (!c) return;
  const on = !c.recording;
  const r = await act(on ? "record" : "stop recording", on ? "/call/record/startup" : "/call/record/terminate", {callId: selected});
  if (r !== null && !on) loadRecordings();
};
$("soundBtn").onclick = () => {
  const name = $("soundSelect").value;
  if (!name) return;
  act("sound " + name, "/call/inject_sound", {callId: selected, fileName: name, loop: $("soundLoop").checked});
};
$("soundStopBtn").onclick = () => act("stop sound", "/call/inject_sound/terminate", {callId: selected});

// Viewer link: a token for this call's WebRTC player and HLS playlist.
$("viewerBtn").onclick = async () => {
  const v = await act("viewer link", "/viewer/token", {callId: selected});
  if (!v) return;
  const abs = (u) => u ? new URL(u, location.href).href : "";
  $("viewerPlayer").value = abs(v.playerUrl || v.whepUrl);
  $("viewerHls").value = abs(v.hlsUrl);
  $("viewerLinks").hidden = false;
};
// Copy: the clipboard API where the page is a secure context, else the
// old way on the selected text field (which stays selected for a manual
// copy when even that fails).
for (const b of document.querySelectorAll("button[data-copy]")) {
  b.onclick = async () => {
    const input = $(b.dataset.copy);
    input.focus();
    input.select();
    let ok = false;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(input.value);
        ok = true;
      }
    } catch (e) { ok = false; }
    if (!ok) {
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    }
    b.textContent = ok ? "Copied" : "Press Ctrl+C";
    setTimeout(() => { b.textContent = "Copy"; }, 2000);
  };
}

// Pushes: the open call's, from /push/find_all (polled while open), with
// the live status of each output from the stats events.
let pushList = [];
let outputStatus = new Map(); // mediaSessionId -> status from the last stats event
async function loadPushes() {
  const id = selected;
  let list = [];
  try {
    list = await post("/push/find_all", {}) || [];
  } catch (e) { /* 404: none */ }
  if (id !== selected) return;
  const c = calls.get(id) || {};
  pushList = list.filter((p) => p.callId === id || (c.streamName && p.streamName === c.streamName) || p.streamName === id);
  renderPushes();
}
function renderOutputs(outputs) {
  outputStatus = new Map(outputs.map((o) => [o.mediaSessionId, o.status]));
  renderPushes();
}
function renderPushes() {
  const ul = $("pushes");
  ul.textContent = "";
  if (pushList.length === 0) {
    ul.innerHTML = "<li><small>none</small></li>";
    return;
  }
  for (const p of pushList) {
    const li = document.createElement("li");
    li.dataset.mediaSessionId = p.mediaSessionId;
    const url = document.createElement("span");
    url.className = "push-url";
    url.textContent = p.rtmpUrl;
    const st = document.createElement("span");
    const status = outputStatus.get(p.mediaSessionId) || p.status || "";
    st.className = "push-status status-" + status;
    st.textContent = status + (p.muted ? " (muted)" : "");
    li.append(url, st);
    const btn = (text, path) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = text;
      b.onclick = () => act(text.toLowerCase() + " push", path, {mediaSessionId: p.mediaSessionId}).then(loadPushes);
      li.appendChild(b);
    };
    btn(p.muted ? "Unmute" : "Mute", p.muted ? "/push/unmute" : "/push/mute");
    btn("Remove", "/push/terminate");
    ul.appendChild(li);
  }
}
$("pushBtn").onclick = async () => {
  const url = $("pushUrl").value.trim();
  if (!url) { $("pushUrl").focus(); return; }
  const c = calls.get(selected) || {};
  const r = await act("push", "/push/startup", {streamName: c.streamName || selected, rtmpUrl: url});
  if (r) {
    $("pushUrl").value = "";
    loadPushes();
  }
};

// The event log: /call/log when the panel opens, then "log" events.
async function loadLog(callId) {
  logEntries = [];
  logPending = [];
  logLoading = true;
  renderLog();
  let entries = [];
  try {
    const r = await post("/call/log", {callId: callId});
    entries = (r && r.entries) || [];
  } catch (e) {
    entries = [{t: Date.now(), kind: "call", level: "warn", text: "no log: " + e.message}];
  }
  if (callId !== selected) return;
  logLoading = false;
  logEntries = entries;
  // The events that came while /call/log was under way and are not in it.
  for (const e of logPending) {
    if (!logEntries.some((x) => x.t === e.t && x.text === e.text)) logEntries.push(e);
  }
  logPending = [];
  renderLog();
}
const LOG_MAX = 500;
function onLog(ev) {
  if (!ev || ev.callId !== selected || !ev.entry) return;
  if (logLoading) { logPending.push(ev.entry); return; }
  logEntries.push(ev.entry);
  if (logEntries.length > LOG_MAX) logEntries.splice(0, logEntries.length - LOG_MAX);
  appendLog(ev.entry);
}
function renderLog() {
  const box = $("log");
  box.textContent = "";
  for (const e of logEntries) appendLog(e);
}
function appendLog(e) {
  const box = $("log");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 30;
  const div = document.createElement("div");
  div.className = "lvl-" + (e.level || "info");
  const t = document.createElement("span");
  t.className = "t";
  const d = new Date(e.t);
  t.textContent = d.toLocaleTimeString([], {hour12: false}) + "." + String(d.getMilliseconds()).padStart(3, "0") + " ";
  const k = document.createElement("span");
  k.className = "k";
  k.textContent = (e.kind || "") + " ";
  div.append(t, k, document.createTextNode(e.text || ""));
  box.appendChild(div);
  while (box.childElementCount > LOG_MAX) box.firstChild.remove();
  if (atBottom) box.scrollTop = box.scrollHeight;
}

// --- The event stream. ---

function connectEvents() {
  const es = new EventSource("events");
  es.addEventListener("snapshot", (ev) => {
    calls.clear();
    for (const c of JSON.parse(ev.data) || []) calls.set(c.callId, c);
    render();
    if (selected) renderDetail();
  });
  es.addEventListener("call", (ev) => {
    const c = JSON.parse(ev.data);
    const before = calls.get(c.callId);
    calls.set(c.callId, c);
    render();
    if (c.callId === selected) renderDetail();
    if (before && before.recording && !c.recording) loadRecordings();
    if ((c.callId === autoPlay || (c.incoming && c.streamName === autoPlayStream)) && c.status === "ESTABLISHED") {
      autoPlay = null;
      autoPlayStream = null;
      $("playStream").value = c.streamName || c.callId;
      $("playStream").oninput();
      play().catch((e) => { $("playerState").textContent = "player: " + e.message; });
    }
  });
  es.addEventListener("stats", (ev) => onStats(JSON.parse(ev.data)));
  es.addEventListener("log", (ev) => onLog(JSON.parse(ev.data)));
  es.addEventListener("registration", () => loadRegistrations());
  es.onerror = () => { /* EventSource reconnects by itself and gets a new snapshot */ };
}

// Ended calls' stats go after a window; the open call's charts follow the
// clock even when no sample comes (held, ended).
setInterval(() => {
  const now = Date.now();
  for (const [id, list] of stats) {
    while (list.length > 0 && list[0].t < now - CHART_WINDOW_MS) list.shift();
    if (list.length === 0 && id !== selected) stats.delete(id);
  }
  drawCharts();
}, 5000);

// --- Panels: registrations, recordings, nodes, sounds. ---

// The registrations panel: the gateway's accounts and what registered to
// it, from /registration/find_all (404: none), refreshed on every
// "registration" event and every 30 s.
async function loadRegistrations() {
  let regs = [];
  try {
    regs = await post("/registration/find_all", {});
  } catch (e) { /* 404: none */ }
  const tbody = $("regs");
  tbody.textContent = "";
  if (!regs || regs.length === 0) {
    tbody.innerHTML = '<tr><td colspan="5"><small>none</small></td></tr>';
    return;
  }
  for (const r of regs) {
    const tr = document.createElement("tr");
    tr.dataset.account = r.account;
    const cell = (text, cls, label) => addCell(tr, text, cls, label);
    cell(r.account + (r.inbound && r.contact ? " (" + r.contact + ")" : ""), "", "Account");
    cell(r.inbound ? "to us" : "ours", "", "Kind");
    cell(r.state, "reg-state state-" + r.state, "State");
    cell(r.expires ? new Date(r.expires).toLocaleTimeString() : "", "", "Expires");
    cell(r.lastError || "", "", "Last error");
    tbody.appendChild(tr);
  }
}

function size(n) {
  if (n >= 1 << 30) return fmt(n / (1 << 30), 1) + " GB";
  if (n >= 1 << 20) return fmt(n / (1 << 20), 1) + " MB";
  if (n >= 1 << 10) return fmt(n / (1 << 10), 0) + " KB";
  return n + " B";
}
function duration(ms) {
  if (!ms) return "";
  const s = Math.round(ms / 1000);
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

// The recordings panel, from /recording/find_all (404: none; 400: the
// server records nothing). The URL the server gives is made relative to
// the page, so that it works behind a proxy that serves the page below a
// path.
async function loadRecordings() {
  const tbody = $("recs");
  const [recs, note] = await findAll("/recording/find_all", "none", "recording is off (-record-dir)");
  tbody.textContent = "";
  if (recs.length === 0) {
    const tr = document.createElement("tr");
    const td = addCell(tr, "", "", "");
    td.colSpan = 6;
    td.innerHTML = "<small></small>";
    td.firstChild.textContent = note;
    tbody.appendChild(tr);
    return;
  }
  for (const r of recs) {
    const tr = document.createElement("tr");
    tr.dataset.name = r.name;
    tr.dataset.callId = r.callId || "";
    const cell = (text, cls, label) => addCell(tr, text, cls, label);
    cell(r.name, "rec-name", "Name");
    cell(r.callId || "", "", "Call");
    cell(size(r.size || 0), "", "Size");
    cell(r.recording ? "recording…" : duration(r.durationMs), "", "Duration");
    cell(r.started ? new Date(r.started).toLocaleString() : "", "", "Date");
    const td = cell("", "rec-act");
    const url = (r.url || ("/recordings/" + encodeURIComponent(r.name))).replace(/^\//, "");
    if (!r.recording) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = "Play";
      b.onclick = () => {
        const v = $("recPlayer");
        v.hidden = false;
        v.src = url;
        v.play().catch(() => { /* the user presses play */ });
      };
      const a = document.createElement("a");
      a.className = "rec-download";
      a.href = url + "?download=1";
      a.textContent = "Download";
      a.setAttribute("download", r.name);
      td.append(b, " ", a);
    }
    tbody.appendChild(tr);
  }
}
$("recRefresh").onclick = loadRecordings;

// The nodes panel: only in a cluster (/cluster/nodes answers 200).
// selfNode is the node serving this page.
let selfNode = "";
async function loadNodes() {
  let nodes = null;
  try {
    nodes = await post("/cluster/nodes", {});
  } catch (e) { nodes = null; }
  $("nodesSection").hidden = !Array.isArray(nodes);
  if (!Array.isArray(nodes)) return;
  const self = nodes.find((n) => n.self);
  selfNode = self ? self.nodeId : "";
  const tbody = $("nodes");
  tbody.textContent = "";
  for (const n of nodes) {
    const tr = document.createElement("tr");
    tr.dataset.nodeId = n.nodeId;
    const cell = (text, cls, label) => addCell(tr, text, cls, label);
    cell(n.nodeId + (n.self ? " (this one)" : ""), "", "Node");
    cell(n.url || "", "", "URL");
    cell((n.calls || 0) + (n.maxCalls ? " / " + n.maxCalls : ""), "", "Calls");
    cell(n.started ? new Date(n.started).toLocaleString() : "", "", "Started");
    cell(n.seen ? new Date(n.seen).toLocaleTimeString() : "", "", "Seen");
    tbody.appendChild(tr);
  }
}

// The sounds of -sound-dir for "Play sound".
async function loadSounds() {
  const sel = $("soundSelect");
  const [sounds, note] = await findAll("/sound/find_all", "no sounds", "sounds are off (-sound-dir)");
  sel.textContent = "";
  if (sounds.length === 0) {
    const o = document.createElement("option");
    o.value = "";
    o.textContent = note;
    sel.appendChild(o);
  }
  for (const s of sounds) {
    const o = document.createElement("option");
    o.value = s.name;
    o.textContent = s.name;
    sel.appendChild(o);
  }
  $("soundBtn").disabled = sounds.length === 0;
}

// --- The WebRTC player. ---

// whepPlay (player/player.js, shipped by sink/whep) POSTs an SDP offer to
// /whep/{toStream} and plays the answer. window.player is the session
// being played (pc, audioOnly, stop).
window.player = null;
async function play() {
  await stop();
  const name = $("playStream").value.trim();
  if (!name) return;
  $("playerState").textContent = "WebRTC: connecting to " + name;
  const session = await whepPlay("whep/" + encodeURIComponent(name), $("player"));
  window.player = session;
  const state = () => {
    $("playerState").textContent = "WebRTC: " + session.pc.connectionState +
      (session.audioOnly ? " (audio only: unmute with the player's controls)" : "");
  };
  session.pc.addEventListener("connectionstatechange", state);
  state();
}
async function stop() {
  const s = window.player;
  window.player = null;
  if (s) await s.stop();
  $("player").srcObject = null;
}
// The HLS playlist of the stream named (served unless -hls=false).
$("playStream").oninput = () => {
  const name = $("playStream").value.trim();
  $("hlsLink").hidden = !name;
  $("hlsLink").href = "hls/" + encodeURIComponent(name) + "/index.m3u8";
};
$("playBtn").onclick = () => play().catch((e) => { $("playerState").textContent = "player: " + e.message; });
$("stopBtn").onclick = () => stop().then(() => { $("playerState").textContent = "stopped"; });

async function loadDefaults() {
  try {
    const resp = await fetch("defaults");
    if (!resp.ok) return;
    const d = await resp.json();
    for (const [k, v] of Object.entries(d || {})) {
      const el = $(k);
      // What the user typed before the defaults came stays.
      if (!el || (el.type !== "checkbox" && el.value !== "")) continue;
      if (el.type === "checkbox") el.checked = v === true || v === "true";
      else el.value = v;
    }
    if (d && d.toStream) $("playStream").value = d.toStream;
    if (d && d.dialin) {
      // -demo: the demo phone calls the gateway as sip:{dialin}@...; the
      // call shows as "in" and plays once answered.
      $("dialinBtn").hidden = false;
      $("dialinBtn").onclick = async () => {
        autoPlayStream = d.dialin;
        try {
          const resp = await fetch("demo/dialin", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"});
          if (!resp.ok) throw new Error("dial-in: HTTP " + resp.status);
          message("the demo phone is calling " + d.dialin);
        } catch (e) {
          autoPlayStream = null;
          message(e.message, true);
        }
      };
    }
  } catch (e) { /* no defaults */ }
}

loadDefaults();
connectEvents();
loadRegistrations();
loadRecordings();
loadNodes();
loadSounds();
setInterval(loadRegistrations, 30000);
setInterval(loadRecordings, 30000);
setInterval(loadNodes, 10000);
