"""The studio page's script for the new-run and jobs views (graftkit/apps/studio/page_js.py has the rest)."""

NEW = r"""
let schema = null, maxUpload = 0;
async function loadNew(){
  const d = await api("GET", "/api/data"); maxUpload = d.max_upload;
  options($("data-file"), [""].concat(d.files), ["(choose a file)"].concat(d.files));
  if (!schema) { schema = await api("GET", "/api/form/classification"); options($("task"), schema.tasks); $("task").value = schema.task; renderForm(); }
  $("upload-note").textContent = "(at most " + Math.round(maxUpload / 1048576) + " MiB)";
}
function fieldHtml(f){
  const id = "f-" + f.key, hint = esc(f.description) + " <i>(" + esc(f.type) + (f.required ? ", required" : "") + ")</i>";
  const input = f.choices ? "<select id=\"" + id + "\" name=\"" + esc(f.key) + "\">" + f.choices.map(c => "<option" +
      (c === f.default ? " selected" : "") + ">" + esc(c) + "</option>").join("") + "</select>"
    : "<input id=\"" + id + "\" name=\"" + esc(f.key) + "\" value=\"" + esc(f.default) + "\" placeholder=\"" + (f.default ? "" : "(not set)") + "\">";
  return "<div class=field><label for=\"" + id + "\">" + esc(f.key) + "</label>" + input + "<span class=muted>" + hint + "</span></div>";
}
function renderForm(){
  const train = $("f-data.train") ? $("f-data.train").value : $("data-file").value;
  $("config-form").innerHTML = schema.sections.map(s => "<fieldset><legend>" + esc(s.name) + "</legend>" +
    s.fields.map(fieldHtml).join("") + "</fieldset>").join("") +
    "<p class=muted>data formats this task reads: " + schema.formats.map(esc).join(", ") + "</p>";
  $("f-data.train").value = train;
}
function formValues(){
  const values = {};
  $("config-form").querySelectorAll("input, select").forEach(el => { values[el.name] = el.value; });
  return values;
}
async function preview(path){
  const p = await api("GET", "/api/data/preview?path=" + enc(path)); showPreview(p);
}
function showPreview(p){
  $("preview-note").textContent = p.format ? p.path + ": " + p.format + ", " + p.total + " rows, columns: " + p.columns.join(", ")
    : p.path + ": " + p.note;
  if (p.format) table($("preview"), p.columns, p.rows.map(r => p.columns.map(c => String(r[c] ?? ""))));
  else table($("preview"), ["first lines"], p.lines.map(l => [l]));
  if ($("f-data.train")) $("f-data.train").value = p.path;
}
$("data-file").onchange = () => { if ($("data-file").value) preview($("data-file").value).catch(showError); };
$("upload").onchange = async () => {
  const file = $("upload").files[0]; if (!file) return;
  try {
    const p = await api("PUT", "/api/data/" + enc(file.name), undefined, file);
    await loadNew(); $("data-file").value = p.path; showPreview(p); showError(null);
  } catch (e) { showError(e); }
};
$("task").onchange = async () => { try { schema = await api("GET", "/api/form/" + enc($("task").value)); renderForm(); }
                                   catch (e) { showError(e); } };
async function submitForm(mode){
  $("form-error").textContent = ""; $("saved").classList.add("hidden");
  try {
    const r = await api("POST", "/api/configs", {task: $("task").value, values: formValues(), check: mode === "check",
                                                 launch: mode === "launch"});
    if (mode === "check") { $("form-error").textContent = ""; $("saved-note").textContent = "valid: " + r.config;
                            $("saved-yaml").textContent = ""; $("saved").classList.remove("hidden"); return; }
    $("saved-note").textContent = "saved " + r.config + (r.job ? " and queued as job " + r.job : "") +
      " (graftkit train " + r.config + " runs it too)";
    $("saved-yaml").textContent = r.yaml; $("saved").classList.remove("hidden");
    if (r.job) location.hash = "jobs/" + r.job;
  } catch (e) { $("form-error").textContent = e.message; }
}
$("check-btn").onclick = () => submitForm("check");
$("save-btn").onclick = () => submitForm("save");
$("launch-btn").onclick = () => submitForm("launch");
"""

JOBS = r"""
let live = null, liveId = null, jobsTimer = null;
const FINAL = ["complete", "failed", "stopped", "interrupted", "cancelled"];
function progressText(p){
  if (!p || p.step == null) return "";
  return p.step + "/" + p.total + (p.loss != null ? " · loss " + num(p.loss) : "") + (p.eta ? " · eta " + p.eta : "");
}
function validationText(v){ return v ? Object.entries(v).map(([k, x]) => k + " " + num(x, 3)).join(", ") : ""; }
async function loadJobs(arg){
  await refreshJobs();
  if (arg) watch(+arg); else if (liveId) watch(liveId);
  clearInterval(jobsTimer);
  jobsTimer = setInterval(() => { if (view === "jobs") refreshJobs().catch(showError); }, 2000);
}
async function refreshJobs(){
  const jobs = (await api("GET", "/api/jobs")).jobs;
  $("jobs-table").tBodies[0].innerHTML = jobs.map(j => "<tr id=job-" + j.id + "><td>" + j.id + "</td><td><a href=\"#run/" + enc(j.run_name) +
    "\">" + esc(j.run_name) + "</a></td><td>" + esc(j.config) + "</td><td class=\"state status-" + esc(j.state) + "\">" + esc(j.state) +
    "</td><td>" + progressText(j.progress) + "</td><td class=muted>" + esc(validationText(j.progress.validation)) + "</td><td>" +
    "<button data-act=watch data-id=" + j.id + ">Watch</button>" +
    (["queued", "running"].includes(j.state) ? "<button data-act=stop data-id=" + j.id + ">Stop</button>" : "") +
    (["stopped", "interrupted", "failed"].includes(j.state) ? "<button data-act=resume data-id=" + j.id + ">Resume</button>" : "") +
    "</td></tr>").join("");
}
function watch(id){
  if (live) live.close();
  liveId = id; $("job-live").classList.remove("hidden"); $("live-id").textContent = id; $("live-log").textContent = "";
  $("live-message").textContent = ""; $("live-validation").textContent = "";
  live = new EventSource("/api/jobs/" + id + "/events");
  live.addEventListener("update", ev => {
    const d = JSON.parse(ev.data), p = d.progress;
    $("live-state").textContent = d.job.state; $("live-state").className = "status-" + d.job.state;
    if (p.total) { $("live-bar").max = p.total; $("live-bar").value = p.step; }
    $("live-progress").textContent = progressText(p);
    $("live-validation").textContent = validationText(p.validation);
    $("live-message").textContent = d.job.message || "";
    if (d.lines) { $("live-log").textContent += d.lines; $("live-log").scrollTop = $("live-log").scrollHeight; }
    if (FINAL.includes(d.job.state)) { live.close(); live = null; refreshJobs().catch(showError); }
  });
  live.onerror = () => { if (live) { live.close(); live = null; } };
}
$("jobs-table").onclick = async ev => {
  const b = ev.target.closest("button"); if (!b) return;
  const id = +b.dataset.id;
  try {
    if (b.dataset.act === "stop") await api("POST", "/api/jobs/" + id + "/stop");
    if (b.dataset.act === "resume") await api("POST", "/api/jobs/" + id + "/resume");
    await refreshJobs(); watch(id);
  } catch (e) { showError(e); }
};
"""
