"""The labelling page: plain HTML + JS, no external assets (graftkit/apps/labelling/page.py serves it)."""

PAGE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>graftkit labelling · {{FILE}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
 blockquote{font-size:1.25rem;margin:1rem 0;padding:.8rem 1rem;border-left:4px solid #1f3b73;background:#f5f7fa}
 button{font:inherit;padding:.4rem .9rem;margin:.2rem;border:1px solid #999;border-radius:.3rem;background:#fff}
 button.preselected{outline:3px solid #1f3b73} button.chosen{background:#1f3b73;color:#fff}
 kbd{font-size:.75rem;color:#555;margin-right:.3rem} .muted{color:#777;font-size:.85rem} .error{color:#b00}
 progress{width:100%}
</style></head><body>
<h1>Label <code>{{FILE}}</code></h1>
<p><progress id="bar" value="0" max="1"></progress> <span id="progress" aria-live="polite"></span></p>
<p class="muted">row <span id="pos"></span> · model suggests <b id="suggested"></b></p>
<blockquote id="text"></blockquote><p id="pair" class="muted"></p>
<div id="labels"></div>
<p class="muted">Enter: accept the outlined label · 1-9: choose a label · Backspace or u: undo · &larr; &rarr;: move</p>
<p id="status" class="muted" aria-live="polite"></p><p id="error" class="error"></p>
<script>
let sheet = null, at = 0;
const $ = id => document.getElementById(id);
async function api(method, url, body){
  const r = await fetch(url, {method, headers: {"Content-Type": "application/json"},
                              body: body === undefined ? undefined : JSON.stringify(body)});
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
  return data;
}
function nextOpen(from){
  const n = sheet.rows.length;
  for (let k = 1; k <= n; k++){ const i = (from + k) % n; if (!sheet.rows[i].label) return i; }
  return from;
}
function render(){
  const row = sheet.rows[at], pick = row.label || row.suggested;
  $("bar").max = sheet.total; $("bar").value = sheet.answered;
  $("progress").textContent = sheet.answered + " / " + sheet.total + " answered" +
    (sheet.answered === sheet.total ? " - all done: graftkit label import " + "{{FILE}}" + " RUN" : "");
  $("pos").textContent = (at + 1) + " of " + sheet.total;
  $("suggested").textContent = row.suggested;
  $("text").textContent = row.text; $("pair").textContent = row.pair;
  $("labels").innerHTML = "";
  sheet.labels.forEach((label, i) => {
    const b = document.createElement("button");
    b.dataset.label = label;
    b.innerHTML = (i < 9 ? "<kbd>" + (i + 1) + "</kbd>" : "");
    b.appendChild(document.createTextNode(label));
    if (label === pick) b.classList.add("preselected");
    if (label === row.label) b.classList.add("chosen");
    b.onclick = () => act(() => choose(label));
    $("labels").appendChild(b);
  });
}
async function choose(label){
  sheet = await api("PUT", "/api/rows/" + at, {label});
  $("status").textContent = "saved row " + (at + 1) + ": " + label;
  at = nextOpen(at); render();
}
async function undo(){
  const r = await api("POST", "/api/undo");
  sheet = r; at = r.index; $("status").textContent = "undid row " + (at + 1); render();
}
async function act(f){ $("error").textContent = ""; try { await f(); } catch (e) { $("error").textContent = e.message; } }
document.addEventListener("keydown", ev => {
  if (!sheet) return;
  const row = sheet.rows[at];
  if (ev.key === "Enter") act(() => choose(row.label || row.suggested));
  else if (/^[1-9]$/.test(ev.key) && +ev.key <= sheet.labels.length) act(() => choose(sheet.labels[+ev.key - 1]));
  else if (ev.key === "Backspace" || ev.key === "u") { ev.preventDefault(); act(undo); }
  else if (ev.key === "ArrowRight") { at = Math.min(at + 1, sheet.rows.length - 1); render(); }
  else if (ev.key === "ArrowLeft") { at = Math.max(at - 1, 0); render(); }
  else return;
  ev.preventDefault();
});
act(async () => { sheet = await api("GET", "/api/sheet"); at = sheet.answered < sheet.total ? nextOpen(-1) : 0;
                  render(); document.body.dataset.ready = "1"; });
</script></body></html>
"""
