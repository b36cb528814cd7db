"""The studio page's script: plain JavaScript, no libraries (graftkit/apps/studio/page_html.py inlines it)."""

from graftkit.apps.studio.page_js_explain import EXPLAIN
from graftkit.apps.studio.page_js_more import BATCH, DEPLOY, LABEL
from graftkit.apps.studio.page_js_new import JOBS, NEW

CORE = r"""
const $ = id => document.getElementById(id);
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                                                           "'": "&#39;"}[c]));
const enc = encodeURIComponent;
let view = null;
async function api(method, url, body, raw){
  const opts = {method, headers: {}};
  if (raw !== undefined) opts.body = raw;
  else if (body !== undefined){ opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  const r = await fetch(url, opts);
  const text = await r.text();
  let data; try { data = JSON.parse(text); } catch (e) { data = {error: text || ("HTTP " + r.status)}; }
  if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
  return data;
}
function showError(e){ $("error").textContent = e ? (e.message || String(e)) : ""; }
function num(v, d = 4){ return v == null ? "" : Number(v).toFixed(d); }
function dur(s){ if (s == null) return ""; s = Math.round(s); return s >= 60 ? Math.floor(s / 60) + " min " + (s % 60) + " s" : s + " s"; }
function table(el, header, rows){
  el.innerHTML = "<thead><tr>" + header.map(h => "<th>" + esc(h) + "</th>").join("") + "</tr></thead><tbody>" +
    rows.map(r => "<tr>" + r.map(c => typeof c === "number" ? "<td class=num>" + num(c) + "</td>" : "<td>" + esc(c) + "</td>").join("") +
    "</tr>").join("") + "</tbody>";
}
function options(el, values, labels){
  const keep = el.value;
  el.innerHTML = values.map((v, i) => "<option value=\"" + esc(v) + "\">" + esc(labels ? labels[i] : v) + "</option>").join("");
  if (values.includes(keep)) el.value = keep;
}
const COLORS = ["#1f3b73", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285"];
function chart(series, title){
  const pts = series.flatMap(s => s.points);
  if (!pts.length) return "<p class=muted>no curve recorded</p>";
  const W = 620, H = 280, P = 48, xs = pts.map(p => p[0]), ys = pts.map(p => p[1]);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) x1 = x0 + 1; if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
  const X = x => (P + (x - x0) / (x1 - x0) * (W - 2 * P)).toFixed(1), Y = y => (H - P - (y - y0) / (y1 - y0) * (H - 2 * P)).toFixed(1);
  const lines = series.map((s, i) => "<polyline fill=none stroke-width=2 stroke=\"" + COLORS[i % 6] + "\" points=\"" +
    s.points.map(p => X(p[0]) + "," + Y(p[1])).join(" ") + "\"><title>" + esc(s.name) + "</title></polyline>" +
    s.points.map(p => "<circle r=2.5 fill=\"" + COLORS[i % 6] + "\" cx=" + X(p[0]) + " cy=" + Y(p[1]) + "></circle>").join("")).join("");
  const legend = series.map((s, i) => "<text x=" + (P + i * 150) + " y=16 fill=\"" + COLORS[i % 6] + "\">" + esc(s.name) + "</text>").join("");
  const axes = "<line x1=" + P + " y1=" + (H - P) + " x2=" + (W - P) + " y2=" + (H - P) + " stroke=#999></line><line x1=" + P +
    " y1=" + P + " x2=" + P + " y2=" + (H - P) + " stroke=#999></line>" +
    "<text x=" + P + " y=" + (H - P + 16) + " font-size=11>" + x0 + "</text><text x=" + (W - P) + " y=" + (H - P + 16) +
    " font-size=11 text-anchor=end>step " + x1 + "</text><text x=" + (P - 4) + " y=" + (H - P) + " font-size=11 text-anchor=end>" +
    num(y0, 3) + "</text><text x=" + (P - 4) + " y=" + (P + 4) + " font-size=11 text-anchor=end>" + num(y1, 3) + "</text>";
  return "<svg class=chart role=img aria-label=\"" + esc(title) + "\" width=" + W + " height=" + H + " data-series=" +
    series.length + ">" + legend + axes + lines + "</svg>";
}
function route(){
  const hash = location.hash.slice(1) || "runs", parts = hash.split("/");
  view = parts[0]; const arg = decodeURIComponent(parts.slice(1).join("/"));
  const load = {runs: loadRuns, run: loadRun, compare: loadCompare, new: loadNew, jobs: loadJobs, label: loadLabel,
                deploy: loadDeploy}[view];
  if (!load) { location.hash = "runs"; return; }
  document.querySelectorAll("main > section").forEach(s => s.classList.add("hidden"));
  $("view-" + view).classList.remove("hidden");
  document.querySelectorAll("nav a").forEach(a => a.classList.toggle("on", a.id === "nav-" + view));
  showError(null); document.body.dataset.ready = "";
  load(arg).catch(showError).finally(() => { document.body.dataset.ready = hash; });
}
"""

RUNS = r"""
let runs = [], sortKey = "name", sortDir = 1;
const selected = new Set();
async function loadRuns(){ runs = (await api("GET", "/api/runs")).runs; renderRuns(); }
function cmp(a, b){ return a == null ? (b == null ? 0 : 1) : b == null ? -1 : a < b ? -1 : a > b ? 1 : 0; }
function renderRuns(){
  const f = $("runs-filter").value.toLowerCase();
  const shown = runs.filter(r => [r.name, r.task, r.base_model, r.status].join(" ").toLowerCase().includes(f))
    .sort((a, b) => cmp(a[sortKey], b[sortKey]) * sortDir);
  $("runs-table").tBodies[0].innerHTML = shown.map(r => "<tr data-run=\"" + esc(r.name) + "\"><td><input type=checkbox " +
    "class=pick-run value=\"" + esc(r.name) + "\"" + (selected.has(r.name) ? " checked" : "") + "></td><td><a href=\"#run/" +
    enc(r.name) + "\">" + esc(r.name) + "</a></td><td>" + esc(r.task) + "</td><td>" + esc(r.base_model) +
    "</td><td class=\"status status-" + esc(r.status) + "\">" + esc(r.status) + "</td><td class=num>" +
    (r.value == null ? "" : esc(r.metric) + " " + num(r.value)) + "</td><td class=num>" + dur(r.duration_s) + "</td></tr>").join("");
}
$("runs-filter").oninput = renderRuns;
document.querySelectorAll("#runs-table th.sort").forEach(th => th.onclick = () => {
  sortDir = sortKey === th.dataset.key ? -sortDir : 1; sortKey = th.dataset.key; renderRuns(); });
$("runs-table").onchange = ev => { if (ev.target.classList.contains("pick-run"))
  ev.target.checked ? selected.add(ev.target.value) : selected.delete(ev.target.value); };
$("compare-btn").onclick = () => { if (selected.size < 2) return showError(new Error("select two or more runs to compare"));
  location.hash = "compare/" + [...selected].map(enc).join(","); };
"""

RUN = r"""
let runName = null, mistakeRows = [], mistakeSplit = null, tried = "";
function curveSeries(curves, keep){ return Object.keys(curves).filter(keep).sort().map(k => ({name: k, points: curves[k]})); }
async function loadRun(name){
  const d = await api("GET", "/api/runs/" + enc(name)), s = d.summary;
  runName = name; $("run-title").textContent = name; $("try-result").innerHTML = $("try-heat").innerHTML = ""; $("mistake-detail").innerHTML = "";
  await loadBatchFiles();
  $("run-summary").innerHTML = "<span class=\"status-" + esc(s.status) + "\" id=run-status>" + esc(s.status) + "</span> · " +
    esc(s.task) + " · " + esc(s.base_model) + (s.value == null ? "" : " · " + esc(s.metric) + " " + num(s.value));
  table($("run-metrics"), ["metric", "value"], Object.entries(d.metrics));
  $("run-curves").innerHTML = chart(curveSeries(d.curves, k => k.endsWith("loss")), "losses") +
    chart(curveSeries(d.curves, k => !k.endsWith("loss")), "validation metrics");
  $("run-plots").innerHTML = d.plots.map(p => "<figure><img alt=\"" + esc(p) + "\" src=\"/api/runs/" + enc(name) +
    "/file?path=" + enc(p) + "\"><figcaption>" + esc(p) + "</figcaption></figure>").join("") || "<p class=muted>no plots</p>";
  table($("run-robustness"), ["perturbation", d.robustness.metric || "metric", "delta", "flip rate", "example"],
        d.robustness.rows.map(r => [r.name, r.metric, r.delta, r.flip_rate, r.example]));
  $("run-quality").innerHTML = d.quality.map(w => "<li>" + esc(w) + "</li>").join("") || "<li>no warnings</li>";
  $("run-card").textContent = d.card;
  options($("mistake-split"), d.mistake_splits);
  if (d.mistake_splits.includes("test")) $("mistake-split").value = "test";
  $("mistake-true").innerHTML = $("mistake-predicted").innerHTML = "";
  if (d.mistake_splits.length) await loadMistakes(); else { $("mistakes").innerHTML = ""; $("mistake-count").textContent = "none stored"; }
}
async function loadMistakes(){
  mistakeSplit = $("mistake-split").value;
  const q = new URLSearchParams({split: mistakeSplit, true: $("mistake-true").value, predicted: $("mistake-predicted").value});
  const m = await api("GET", "/api/runs/" + enc(runName) + "/mistakes?" + q);
  options($("mistake-true"), [""].concat(m.labels.true), ["any"].concat(m.labels.true));
  options($("mistake-predicted"), [""].concat(m.labels.predicted), ["any"].concat(m.labels.predicted));
  mistakeRows = m.rows;
  const cols = m.columns.filter(c => !["file", "line"].includes(c) && m.rows.some(r => r[c]));
  $("mistakes").innerHTML = "<thead><tr>" + cols.map(c => "<th>" + esc(c) + "</th>").join("") + "<th></th></tr></thead><tbody>" +
    m.rows.map((r, i) => "<tr class=pick data-i=" + i + ">" + cols.map(c => "<td>" + esc(r[c]) + "</td>").join("") + "<td>" +
      (r.text ? "<button class=explain-btn title=\"why this prediction: a heat-map of the words\">Explain</button>" : "") +
      "</td></tr>").join("") + "</tbody>";
  $("mistake-count").textContent = m.total + " mistakes";
}
async function openMistake(i){
  const r = mistakeRows[i], q = new URLSearchParams({split: mistakeSplit, file: r.file || "", line: r.line || 0});
  const p = (await api("GET", "/api/runs/" + enc(runName) + "/prediction?" + q)).prediction;
  const scores = p && p.scores ? Object.entries(p.scores).map(([k, v]) => esc(k) + " " + num(v)).join(" · ") : "";
  $("mistake-detail").innerHTML = "<h3>Mistake</h3><blockquote id=mistake-text>" + esc(r.text) + "</blockquote><p>true <b>" +
    esc(r.true) + "</b> · predicted <b id=mistake-predicted-label>" + esc(r.predicted) + "</b> · confidence " + esc(r.confidence) +
    "</p><p class=muted>" + esc(r.file) + ":" + esc(r.line) + (scores ? " · scores: " + scores : "") + "</p>";
}
$("mistake-split").onchange = () => loadMistakes().catch(showError);
$("mistake-true").onchange = $("mistake-predicted").onchange = $("mistake-split").onchange;
$("mistakes").onclick = ev => { if (ev.target.closest("button.explain-btn")) return explainMistake(ev.target);
  const tr = ev.target.closest("tr.pick"); if (tr) openMistake(+tr.dataset.i).catch(showError); };
async function tryIt(){
  const p = await api("POST", "/api/runs/" + enc(runName) + "/predict", {text: $("try-text").value});
  tried = p.input; $("try-heat").innerHTML = "";
  const why = " <button id=try-explain title=\"why this prediction: a heat-map of the words\">Explain</button>";
  if (p.label !== undefined) {
    $("try-result").innerHTML = "prediction <b id=try-label>" + esc(p.label) + "</b> · confidence <span id=try-confidence>" +
      num(p.score) + "</span>" + (p.out_of_scope == null ? "" : " · out of scope: <b id=try-oos>" + (p.out_of_scope ? "yes" : "no") + "</b>") + why;
  } else {
    $("try-result").innerHTML = "<pre id=try-json>" + esc(JSON.stringify(p, null, 2)) + "</pre>" + why;
  }
}
$("try-btn").onclick = () => tryIt().catch(showError);
$("try-text").onkeydown = ev => { if (ev.key === "Enter") tryIt().catch(showError); };
"""

COMPARE = r"""
let compared = null;
async function loadCompare(arg){
  compared = await api("GET", "/api/compare?runs=" + arg.split(",").map(enc).join(","));
  $("compare-names").textContent = compared.runs.join(" · ");
  table($("compare-metrics"), ["metric"].concat(compared.runs), compared.metrics.map(m => [m.metric].concat(compared.runs.map(n => m[n]))));
  const keys = [...new Set(compared.runs.flatMap(n => Object.keys(compared.curves[n])))].sort();
  options($("compare-curve"), keys);
  if (!keys.includes($("compare-curve").value) || !$("compare-curve").value) $("compare-curve").value = keys.includes("loss") ? "loss" : keys[0];
  drawCompare();
}
function drawCompare(){
  const key = $("compare-curve").value;
  $("compare-chart").innerHTML = chart(compared.runs.filter(n => compared.curves[n][key]).map(n => ({name: n, points: compared.curves[n][key]})), key);
}
$("compare-curve").onchange = drawCompare;
"""

SCRIPT = CORE + RUNS + RUN + EXPLAIN + COMPARE + NEW + JOBS + BATCH + LABEL + DEPLOY + """
window.addEventListener("hashchange", route);
route();
"""
