"""The playground page served at ``GET /``: type text, see the prediction (entities highlighted) or, with
Explain, a heat-map of word attributions from ``POST /v1/explain``; for
causal_lm / seq2seq runs (``{{MODE}}`` = generate) the text streams in from ``POST /v1/generate``."""

PLAYGROUND_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>graftkit playground · {{MODEL}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
 textarea{width:100%;min-height:6rem;font:inherit;padding:.5rem}
 input{font:inherit;padding:.3rem;width:20rem} button{font:inherit;padding:.4rem 1.2rem;margin-top:.5rem}
 .label{font-size:1.4rem;font-weight:600} .bar{background:#4a7;height:.6rem;display:inline-block;margin-left:.5rem}
 mark{padding:0 .2rem;border-radius:.2rem;background:#fd7} mark small{color:#555;margin-left:.2rem}
 .error{color:#b00} table{border-collapse:collapse} td{padding:.1rem .6rem}
 .attr{padding:.1rem .15rem;border-radius:.2rem} #heatmap{line-height:2}
</style></head><body>
<h1>graftkit playground</h1><p>Model: <code>{{MODEL}}</code></p>
<label>API key <input id="key" type="password" autocomplete="off"></label>
<p><textarea id="text" placeholder="Type a sentence…"></textarea></p>
<button id="go">Predict</button> <button id="explain-go">Explain</button>
<div id="mode" data-mode="{{MODE}}" hidden></div>
<div id="out" aria-live="polite"></div>
<script>
const out = document.getElementById("out");
function esc(s){return s.replace(/[&<>"']/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));}
function render(text, p){
  if (Array.isArray(p.entities)) {            // token classification: highlight spans
    let html = "", at = 0;
    const ents = [...p.entities].sort((a,b)=>a.start-b.start);
    for (const e of ents) {
      if (e.start < at) continue;
      const tag = e.label || e.type || e.entity || e.entity_group || "";
      html += esc(text.slice(at, e.start)) + '<mark class="entity" data-label="'+esc(tag)+'">'
            + esc(text.slice(e.start, e.end)) + '<small>'+esc(tag)+'</small></mark>';
      at = e.end;
    }
    return '<p class="entities">' + html + esc(text.slice(at)) + '</p>';
  }
  let html = "";
  if (p.label !== undefined) html += '<p class="label" id="label">' + esc(String(p.label)) + '</p>';
  if (Array.isArray(p.labels)) html += '<p class="label" id="label">' + esc(p.labels.join(", ") || "(none)") + '</p>';
  if (p.scores && typeof p.scores === "object") {
    html += "<table>";
    for (const [k,v] of Object.entries(p.scores)) html += "<tr><td>"+esc(k)+"</td><td>"+Number(v).toFixed(3)
      + (v>=0 && v<=1 ? '<span class="bar" style="width:'+(v*10)+'rem"></span>' : "") + "</td></tr>";
    html += "</table>";
  }
  const rest = Object.fromEntries(Object.entries(p).filter(([k])=>!["label","labels","scores","score"].includes(k)));
  if (Object.keys(rest).length) html += "<pre>" + esc(JSON.stringify(rest, null, 2)) + "</pre>";
  return html;
}
const generating = document.getElementById("mode").dataset.mode === "generate";
if (generating) { document.getElementById("go").textContent = "Generate";
                  document.getElementById("explain-go").hidden = true; }
function heatmap(words){  // green: pushes towards the explained label, red: away from it
  const scale = Math.max(1e-12, ...words.map(w=>Math.abs(w.attribution)));
  return words.map(w => { const a = Math.min(1, Math.abs(w.attribution)/scale).toFixed(2);
    const rgb = w.attribution > 0 ? "22,163,74" : "220,38,38";
    return '<span class="attr" data-attribution="'+w.attribution+'" title="'+w.attribution.toFixed(4)
         + '" style="background:rgba('+rgb+','+a+')">' + esc(w.text) + '</span>'; }).join(" ");
}
document.getElementById("explain-go").addEventListener("click", async () => {
  const text = document.getElementById("text").value;
  out.innerHTML = "…";
  try {
    const r = await fetch("/v1/explain", {method:"POST", headers:{"Content-Type":"application/json",
      "X-API-Key": document.getElementById("key").value}, body: JSON.stringify({text})});
    const body = await r.json();
    if (!r.ok) { const e = body.error || body.detail; out.innerHTML = '<p class="error" id="error">' + r.status
      + ": " + esc(typeof e === "string" ? e : JSON.stringify(e)) + '</p>'; return; }
    const blocks = body.blocks.map(b => '<p class="label">' + esc(b.heading) + '</p>'
                                         + (b.words.length ? '<p class="heat">' + heatmap(b.words) + '</p>' : ""));
    const delta = body.blocks.find(b => b.delta !== null);
    out.innerHTML = '<div id="result"><div id="heatmap">' + blocks.join("") + '</div>'
                  + (delta ? '<p><small>Integrated Gradients, completeness delta '
                             + Number(delta.delta).toExponential(1) + '</small></p>' : "") + '</div>';
  } catch (e) { out.innerHTML = '<p class="error" id="error">' + esc(String(e)) + '</p>'; }
});
async function generate(text) {  // server-sent events over fetch (EventSource cannot send a POST or a key)
  const r = await fetch("/v1/generate", {method:"POST", headers:{"Content-Type":"application/json",
    "X-API-Key": document.getElementById("key").value}, body: JSON.stringify({prompt:text, stream:true})});
  if (!r.ok) { const body = await r.json();
    out.innerHTML = '<p class="error" id="error">' + r.status + ": " + esc(String(body.error || body.detail || ""))
                  + '</p>'; return; }
  out.innerHTML = '<pre id="generated" style="white-space:pre-wrap"></pre>';
  const pre = document.getElementById("generated"), reader = r.body.getReader(), dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buf += dec.decode(value, {stream:true});
    let cut;
    while ((cut = buf.search(/\\r?\\n\\r?\\n/)) >= 0) {   // one SSE event per blank-line-terminated block
      const block = buf.slice(0, cut); buf = buf.slice(cut).replace(/^\\r?\\n\\r?\\n/, "");
      const event = (block.match(/^event: ?(.*)$/m) || [])[1], data = (block.match(/^data: ?(.*)$/m) || [])[1];
      if (event === "token") pre.textContent += JSON.parse(data);
      if (event === "done") pre.insertAdjacentHTML("afterend", '<p id="result">' +
                                                   JSON.parse(data).tokens + ' tokens</p>');
    }
  }
}
document.getElementById("go").addEventListener("click", async () => {
  const text = document.getElementById("text").value;
  out.innerHTML = "…";
  if (generating) { try { await generate(text); } catch (e) {
    out.innerHTML = '<p class="error" id="error">' + esc(String(e)) + '</p>'; } return; }
  try {
    const r = await fetch("/v1/predict", {method:"POST", headers:{"Content-Type":"application/json",
      "X-API-Key": document.getElementById("key").value}, body: JSON.stringify({texts:[text]})});
    const body = await r.json();
    out.innerHTML = r.ok ? '<div id="result">' + render(text, body.predictions[0]) + '</div>'
                         : '<p class="error" id="error">' + r.status + ": " + esc(body.error || "") + '</p>';
  } catch (e) { out.innerHTML = '<p class="error" id="error">' + esc(String(e)) + '</p>'; }
});
</script></body></html>
"""
