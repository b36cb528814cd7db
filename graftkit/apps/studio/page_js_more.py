"""The studio page's script for batch prediction (on a run's page), the Label view and the Deploy view.

The Label view's keys are those of the labelling page (graftkit/apps/labelling/page_html.py): Enter accepts the
outlined label, 1-9 choose, Backspace or u undo, arrows move.
"""

BATCH = r"""
async function loadBatchFiles(){
  const d = await api("GET", "/api/data");
  options($("batch-file"), [""].concat(d.files), ["(choose a file)"].concat(d.files));
  $("batch-note").textContent = ""; $("batch-head").innerHTML = "";
}
$("batch-upload").onchange = async () => {
  const file = $("batch-upload").files[0]; if (!file) return;
  try { const p = await api("PUT", "/api/data/" + enc(file.name), undefined, file);
        await loadBatchFiles(); $("batch-file").value = p.path; } catch (e) { showError(e); }
};
$("batch-btn").onclick = async () => {
  showError(null); $("batch-note").textContent = "predicting...";
  try {
    const r = await api("POST", "/api/runs/" + enc(runName) + "/predict-file", {path: $("batch-file").value});
    $("batch-note").innerHTML = r.rows + " rows predicted · <a id=batch-download href=\"/api/download?path=" + enc(r.output) +
      "\">download " + esc(r.output) + "</a>" + (r.rows > r.head.length ? " (the first " + r.head.length + " below)" : "");
    const cols = [...new Set(r.head.flatMap(o => Object.keys(o)))].filter(c => c !== "scores");
    table($("batch-head"), cols, r.head.map(o => cols.map(c => typeof o[c] === "object" ? JSON.stringify(o[c]) : o[c])));
  } catch (e) { $("batch-note").textContent = ""; showError(e); }
};
"""

LABEL = r"""
let sheet = null, sheetPath = null, sheetRun = null, at = 0;
async function loadLabel(){
  const d = await api("GET", "/api/label");
  options($("label-run"), d.runs); options($("label-pool"), d.pools); options($("label-strategy"), d.strategies);
  if (!$("label-strategy").value || !sheet) $("label-strategy").value = "hybrid";
  options($("label-sheets"), [""].concat(d.sheets), ["(a sheet)"].concat(d.sheets));
}
function nextOpen(from){
  const n = sheet.rows.length;
  for (let k = 1; k <= n; k++){ const i = (from + k) % n; if (!sheet.rows[i].label) return i; }
  return from;
}
function renderSheet(){
  $("label-desk").classList.remove("hidden");
  const row = sheet.rows[at], pick = row.label || row.suggested;
  $("label-bar").max = sheet.total; $("label-bar").value = sheet.answered;
  $("label-progress").textContent = sheet.answered + " / " + sheet.total + " answered";
  $("label-sheet").textContent = sheetPath; $("label-pos").textContent = (at + 1) + " of " + sheet.total;
  $("label-suggested").textContent = row.suggested; $("label-text").textContent = row.text; $("label-pair").textContent = row.pair;
  $("label-buttons").innerHTML = "";
  sheet.labels.forEach((label, i) => {
    const b = document.createElement("button");
    b.dataset.label = label; b.innerHTML = i < 9 ? "<kbd>" + (i + 1) + "</kbd> " : "";
    b.appendChild(document.createTextNode(label));
    if (label === pick) b.classList.add("preselected");
    if (label === row.label) b.classList.add("chosen");
    b.onclick = () => labelAct(() => choose(label));
    $("label-buttons").appendChild(b);
  });
}
function openSheet(d, run){ sheet = d; sheetPath = d.sheet; sheetRun = run; at = d.answered < d.total ? nextOpen(-1) : 0; renderSheet(); }
async function choose(label){
  sheet = await api("POST", "/api/label/answer", {run: sheetRun, path: sheetPath, index: at, label});
  $("label-status").textContent = "saved row " + (at + 1) + ": " + label; at = nextOpen(at); renderSheet();
}
async function undoAnswer(){
  const r = await api("POST", "/api/label/undo", {run: sheetRun, path: sheetPath});
  sheet = r; at = r.index; $("label-status").textContent = "undid row " + (at + 1); renderSheet();
}
async function labelAct(f){ showError(null); try { await f(); } catch (e) { showError(e); } }
$("label-select").onclick = () => labelAct(async () => {
  $("label-status").textContent = "selecting...";
  const d = await api("POST", "/api/label/select", {run: $("label-run").value,
    pool: $("label-strategy").value === "recheck" ? "" : $("label-pool").value,
                                                   strategy: $("label-strategy").value, k: +$("label-k").value});
  openSheet(d, $("label-run").value); $("label-status").textContent = d.note; await loadLabel(); $("label-sheets").value = d.sheet;
});
$("label-sheets").onchange = () => labelAct(async () => { if (!$("label-sheets").value) return;
  openSheet(await api("GET", "/api/label/sheet?" + new URLSearchParams({run: $("label-run").value, path: $("label-sheets").value})),
            $("label-run").value); });
$("label-import").onclick = () => labelAct(async () => {
  const r = await api("POST", "/api/label/import", {run: sheetRun, path: sheetPath});
  $("label-status").textContent = "merged " + r.merged + " rows into " + r.into + (r.unanswered ? " (" + r.unanswered + " not answered)" : "");
});
$("label-retrain").onclick = () => labelAct(async () => {
  const j = await api("POST", "/api/label/retrain", {run: sheetRun || $("label-run").value});
  location.hash = "jobs/" + j.id;
});
document.addEventListener("keydown", ev => {
  if (view !== "label" || !sheet || ["INPUT", "SELECT", "TEXTAREA"].includes(ev.target.tagName)) return;
  const row = sheet.rows[at];
  if (ev.key === "Enter") labelAct(() => choose(row.label || row.suggested));
  else if (/^[1-9]$/.test(ev.key) && +ev.key <= sheet.labels.length) labelAct(() => choose(sheet.labels[+ev.key - 1]));
  else if (ev.key === "Backspace" || ev.key === "u") labelAct(undoAnswer);
  else if (ev.key === "ArrowRight") { at = Math.min(at + 1, sheet.rows.length - 1); renderSheet(); }
  else if (ev.key === "ArrowLeft") { at = Math.max(at - 1, 0); renderSheet(); }
  else return;
  ev.preventDefault();
});
"""

DEPLOY = r"""
let exportTimer = null;
async function loadDeploy(){
  const runs = (await api("GET", "/api/runs")).runs.filter(r => r.complete !== false && r.status === "complete").map(r => r.name);
  options($("deploy-run"), runs); $("serve-key").classList.add("hidden"); $("serve-key-value").textContent = "";
  await Promise.all([showExport(), refreshServices()]);
}
async function showExport(){
  if (!$("deploy-run").value) return;
  const e = await api("GET", "/api/runs/" + enc($("deploy-run").value) + "/export");
  $("export-state").textContent = e.state === "none" ? "not exported" : e.state + (e.error ? ": " + e.error : "");
  $("export-state").className = "status-" + e.state; $("export-log").textContent = e.log.join("\n");
  const b = e.report ? e.report.backends : {};
  table($("export-report"), ["back-end", "metrics", "examples/s"], Object.entries(b).map(([n, x]) =>
    [n, Object.entries(x.metrics).map(([k, v]) => k + " " + num(v)).join(", "), String(x.examples_per_second)]));
  clearTimeout(exportTimer);
  if (e.state === "running") exportTimer = setTimeout(() => { if (view === "deploy") showExport().catch(showError); }, 1000);
}
async function refreshServices(){
  const s = (await api("GET", "/api/services")).services;
  $("services-table").tBodies[0].innerHTML = s.map(x => "<tr><td>" + esc(x.run) + "</td><td><a href=\"" + esc(x.url) +
    "\" target=_blank>" + esc(x.url) + "</a></td><td class=status-" + esc(x.state.split(" ")[0]) + ">" + esc(x.state) +
    "</td><td>" + esc(x.backend + " " + x.precision) + "</td><td>" + (x.state.startsWith("exited") ? "" :
    "<button data-run=\"" + esc(x.run) + "\">Stop</button>") + "</td></tr>").join("");
  if (view === "deploy" && s.some(x => x.state === "starting")) setTimeout(() => refreshServices().catch(showError), 1500);
}
$("deploy-run").onchange = () => showExport().catch(showError);
$("export-btn").onclick = async () => { showError(null);
  try { await api("POST", "/api/runs/" + enc($("deploy-run").value) + "/export", {precision: $("export-precision").value});
        await showExport(); } catch (e) { showError(e); } };
$("serve-btn").onclick = async () => { showError(null);
  try {
    const r = await api("POST", "/api/runs/" + enc($("deploy-run").value) + "/serve",
                        {backend: $("serve-backend").value, precision: $("serve-precision").value});
    $("serve-key-value").textContent = r.api_key; $("serve-key").classList.remove("hidden"); await refreshServices();
  } catch (e) { showError(e); } };
$("services-table").onclick = async ev => { const b = ev.target.closest("button"); if (!b) return;
  try { await api("POST", "/api/runs/" + enc(b.dataset.run) + "/serve/stop"); await refreshServices(); } catch (e) { showError(e); } };
"""
