"""The applications' pages: the monitor dashboard and the assistant chat. Plain HTML + JS, no external assets
(the service may run without internet); the page asks for the API key and keeps it in sessionStorage."""

_STYLE = """
 body{font-family:system-ui,sans-serif;max-width:64rem;margin:1.5rem auto;padding:0 1rem;color:#222}
 input,button,textarea{font:inherit;padding:.3rem} table{border-collapse:collapse;width:100%;margin:.5rem 0}
 td,th{padding:.2rem .5rem;border-bottom:1px solid #ddd;text-align:left;font-size:.9rem}
 .open{color:#c62828;font-weight:600} .error{color:#b00} .muted{color:#777;font-size:.85rem}
 .charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(19rem,1fr));gap:1rem}
 .chart{border:1px solid #ddd;border-radius:.3rem;padding:.4rem}
"""

DASHBOARD_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>graftkit monitor</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>""" + _STYLE + """</style></head><body>
<h1>graftkit monitor</h1>
<label>API key <input id="key" type="password" autocomplete="off"></label> <button id="go">Show</button>
<span class="muted" id="updated"></span> <span class="error" id="error"></span>
<h2>Negative share per topic</h2><div class="charts" id="charts"></div>
<h2>Alerts</h2><table id="alerts"><thead><tr><th>id</th><th>topic</th><th>rule</th><th>state</th><th>opened</th>
<th>resolved</th><th>value</th><th>baseline</th></tr></thead><tbody></tbody></table>
<h2>Latest negative items</h2><table id="negative"><thead><tr><th>time</th><th>topic</th><th>text</th>
<th>p(neg)</th></tr></thead><tbody></tbody></table>
<script>
const REFRESH_S = {{REFRESH_S}};
let loads = 0, timer = null;
const $ = id => document.getElementById(id);
function esc(s){return String(s ?? "").replace(/[&<>"']/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));}
function when(t){return t ? new Date(t*1000).toISOString().slice(0,16).replace("T"," ") : "";}
function chart(tr, alerts, bucket){
  const W=300,H=120,n=tr.start.length; if(!n) return "";
  const t0=tr.start[0], t1=tr.start[n-1]+bucket, x=t=>((t-t0)/(t1-t0))*W;
  const maxc=Math.max(1,...tr.count); let bars="", pts=[];
  tr.start.forEach((t,i)=>{
    const h=tr.count[i]/maxc*H*0.5; bars+=`<rect x="${x(t)}" y="${H-h}" width="${Math.max(1,W/n-1)}" height="${h}" fill="#cfd8e3"/>`;
    if(tr.negative_share[i]!==null) pts.push(`${x(t+bucket/2)},${H-tr.negative_share[i]*H}`);
  });
  let marks="";
  for(const a of alerts.filter(a=>a.topic===tr.topic)){
    marks+=`<line class="alert-mark" x1="${x(a.opened_at)}" x2="${x(a.opened_at)}" y1="0" y2="${H}" stroke="#c62828" stroke-width="2"/>`;
    if(a.resolved_at) marks+=`<line x1="${x(a.resolved_at)}" x2="${x(a.resolved_at)}" y1="0" y2="${H}" stroke="#2e7d32" stroke-dasharray="4"/>`;
  }
  return `<div class="chart" data-topic="${esc(tr.topic)}"><b>${esc(tr.topic)}</b><svg viewBox="0 0 ${W} ${H}" width="100%">`+
    bars+`<polyline fill="none" stroke="#1f3b73" stroke-width="1.5" points="${pts.join(" ")}"/>`+marks+`</svg></div>`;
}
async function load(){
  const key=$("key").value; sessionStorage.setItem("gk-key", key);
  try{
    const r=await fetch("/v1/monitor/summary",{headers:{"X-API-Key":key}});
    const body=await r.json();
    if(!r.ok){$("error").textContent=r.status+": "+(body.error||r.statusText);return;}
    $("error").textContent="";
    $("charts").innerHTML=body.trends.map(tr=>chart(tr, body.alerts, body.bucket_s)).join("");
    $("alerts").tBodies[0].innerHTML=body.alerts.map(a=>`<tr class="alert-row ${a.state}"><td>${a.id}</td><td>${esc(a.topic)}</td>`+
      `<td>${esc(a.rule)}</td><td>${a.state}</td><td>${when(a.opened_at)}</td><td>${when(a.resolved_at)}</td>`+
      `<td>${a.value.toFixed(3)}</td><td>${a.baseline.toFixed(3)}</td></tr>`).join("");
    $("negative").tBodies[0].innerHTML=body.negative.map(i=>`<tr><td>${when(i.time)}</td><td>${esc(i.entity)}</td>`+
      `<td>${esc(i.text)}</td><td>${i.negative_score.toFixed(2)}</td></tr>`).join("");
    loads++; $("updated").textContent=`updated ${new Date().toLocaleTimeString()} (refresh ${loads}, every ${REFRESH_S}s)`;
    $("updated").dataset.loads=loads;
  }catch(e){$("error").textContent=String(e);}
}
$("go").onclick=()=>{load(); if(timer) clearInterval(timer); timer=setInterval(load, REFRESH_S*1000);};
const saved=sessionStorage.getItem("gk-key"); if(saved){$("key").value=saved; $("go").onclick();}
</script></body></html>"""

CHAT_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>graftkit assistant</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>""" + _STYLE + """
 #log p{margin:.4rem 0} .user{text-align:right} .bot{background:#f3f5f8;padding:.4rem;border-radius:.3rem}
 .handoff{border-left:4px solid #c62828}</style></head><body>
<h1>graftkit assistant</h1>
<label>API key <input id="key" type="password" autocomplete="off"></label>
<span class="muted" id="session"></span>
<div id="log" aria-live="polite"></div>
<p><input id="msg" style="width:70%" placeholder="Ask a question…"> <button id="send">Send</button>
<button id="new">New conversation</button></p><p class="error" id="error"></p>
<script>
const $ = id => document.getElementById(id);
let session = null, turns = 0;
function esc(s){return String(s ?? "").replace(/[&<>"']/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));}
async function send(){
  const text=$("msg").value.trim(); if(!text) return;
  $("log").insertAdjacentHTML("beforeend", `<p class="user">${esc(text)}</p>`); $("msg").value="";
  const r=await fetch("/v1/chat",{method:"POST",headers:{"Content-Type":"application/json","X-API-Key":$("key").value},
                      body:JSON.stringify(session ? {message:text, session_id:session} : {message:text})});
  const b=await r.json();
  if(!r.ok){$("error").textContent=r.status+": "+(b.error||r.statusText); return;}
  $("error").textContent=""; session=b.session_id; turns++;
  $("session").textContent="conversation "+session;
  const cls = b.handoff ? "bot handoff" : "bot";
  const why = b.handoff ? `<br><small class="reason">handed to a person: ${esc(b.reason)}</small>` : "";
  $("log").insertAdjacentHTML("beforeend", `<p class="${cls}" data-turn="${turns}" data-intent="${esc(b.intent)}">`+
    `${esc(b.reply)}${why}<br><small class="muted">intent ${esc(b.intent ?? "—")}</small></p>`);
}
$("send").onclick=send; $("msg").addEventListener("keydown", e=>{if(e.key==="Enter") send();});
$("new").onclick=()=>{session=null; turns=0; $("log").innerHTML=""; $("session").textContent="";};
</script></body></html>"""
