"""The studio page's script for explanation heat-maps (on a run's page: the Try box and each mistake's row).

A heat-map shows the words of the text, each tinted by its attribution (POST /api/runs/NAME/explain): green pushes
toward the explained target, red away from it, and the depth of the colour is the attribution's magnitude relative
to the largest of the block; a legend says so and gives the scale, and hovering a word shows its score. A refusal
(a task that does not explain, a text over the limit) is shown in place of the heat-map, in one line.
"""

EXPLAIN = r"""
const HEAT = {toward: "22,163,74", against: "220,38,38"};
function sci(v){ return v === 0 || Math.abs(v) >= 0.001 ? v.toFixed(4) : v.toExponential(2); }
function heatColour(score, scale){
  const depth = scale > 0 ? Math.min(Math.abs(score) / scale, 1) : 0;
  return "rgba(" + (score > 0 ? HEAT.toward : HEAT.against) + "," + depth.toFixed(2) + ")";
}
function heatBlock(b){
  const scale = Math.max(0, ...b.scores.map(Math.abs));
  const words = b.tokens.map((t, i) => (i && b.segments[i] !== b.segments[i - 1] ? "<span class=muted>&#8214;</span> " : "") +
    "<span class=tok data-score=\"" + b.scores[i] + "\" title=\"" + (b.scores[i] > 0 ? "+" : "") + sci(b.scores[i]) +
    "\" style=\"background:" + heatColour(b.scores[i], scale) + "\">" + esc(t) + "</span>").join(" ");
  const legend = "<span class=heat-scale>&minus;" + sci(scale) + "</span><span class=ramp></span><span class=heat-scale>+" +
    sci(scale) + "</span> red: against the target · green: toward it · deeper: larger |attribution|";
  return "<div class=heat-block><p class=muted>" + esc(b.heading) + "</p>" + (b.tokens.length ? "<p class=tokens>" + words +
    "</p><p class=\"heat-legend muted\">" + legend + (b.converged ? "" : " · not converged (completeness delta " +
    sci(b.delta) + ")") + "</p>" : "") + "</div>";
}
function heatmap(x){
  return "<div class=heatmap>" + x.blocks.map(heatBlock).join("") + "<p class=muted>Integrated Gradients, " + esc(x.steps) +
    " steps; baseline: " + esc(x.baseline) + (x.truncated ? "; the text was truncated to the run's max_length" : "") +
    ". Hover a word for its attribution.</p></div>";
}
async function explainInto(el, text, pair){
  const run = runName;  // a reply that comes after the page moved to another run is dropped
  el.innerHTML = "<p class=muted>explaining...</p>";
  let html;
  try { html = heatmap(await api("POST", "/api/runs/" + enc(run) + "/explain", {text, pair: pair || null})); }
  catch (e) { html = "<p class=\"error heat-error\">" + esc(e.message) + "</p>"; }
  if (run === runName) el.innerHTML = html;
}
function explainMistake(button){
  const tr = button.closest("tr"), r = mistakeRows[+tr.dataset.i];
  let next = tr.nextElementSibling;
  if (!next || !next.classList.contains("heat-row")) {
    next = document.createElement("tr"); next.className = "heat-row";
    next.innerHTML = "<td colspan=" + tr.cells.length + "><div class=heat></div></td>";
    tr.after(next);
  }
  return explainInto(next.querySelector(".heat"), r.text, r.text_pair);
}
$("try-result").onclick = ev => { if (ev.target.id === "try-explain") explainInto($("try-heat"), tried); };
"""
