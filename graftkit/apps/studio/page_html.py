"""The studio page: one HTML document with its CSS and script inline (no external assets, works offline)."""
from __future__ import annotations

import html

from graftkit.apps.studio.page_js import SCRIPT
from graftkit.apps.studio.page_views import VIEWS

STYLE = """
 body{font-family:system-ui,sans-serif;margin:0;color:#222} main{max-width:72rem;margin:1rem auto;padding:0 1rem}
 nav{background:#1f3b73;padding:.5rem 1rem} nav a{color:#fff;margin-right:1.2rem;text-decoration:none;font-weight:600}
 nav a.on{text-decoration:underline} nav span{color:#cbd5e8;float:right}
 table{border-collapse:collapse;margin:.5rem 0} th,td{border-bottom:1px solid #ddd;padding:.25rem .6rem;text-align:left}
 th.sort{cursor:pointer} td.num{text-align:right;font-variant-numeric:tabular-nums}
 button{font:inherit;padding:.3rem .8rem;margin:.15rem;border:1px solid #888;border-radius:.3rem;background:#fff}
 button.primary{background:#1f3b73;color:#fff} input,select,textarea{font:inherit;padding:.2rem}
 .error{color:#b00;white-space:pre-wrap} .muted{color:#777;font-size:.85rem} pre{background:#f5f7fa;padding:.6rem;overflow:auto}
 fieldset{border:1px solid #ccc;margin:.6rem 0} .field{display:grid;grid-template-columns:18rem 14rem 1fr;gap:.6rem;
 align-items:center;padding:.1rem 0} .field label{font-family:monospace} .plots img{max-width:30rem;margin:.3rem;border:1px solid #ddd}
 .status-complete{color:#176e2c} .status-failed{color:#b00} .status-running{color:#1f3b73} .status-interrupted{color:#a86400}
 blockquote{font-size:1.2rem;margin:1rem 0;padding:.8rem 1rem;border-left:4px solid #1f3b73;background:#f5f7fa}
 button.preselected{outline:3px solid #1f3b73} button.chosen{background:#1f3b73;color:#fff} kbd{font-size:.75rem;color:#555}
 tr.pick{cursor:pointer} tr.pick:hover{background:#eef2fa} progress{width:24rem} .hidden{display:none}
 .heatmap{margin:.3rem 0} .tokens{font-size:1.1rem;line-height:2} .tok{padding:.1rem .25rem;border-radius:.2rem}
 .ramp{display:inline-block;width:8rem;height:.8rem;margin:0 .3rem;vertical-align:middle;border:1px solid #ccc;
 background:linear-gradient(90deg,rgb(220,38,38),rgba(220,38,38,0) 50%,rgba(22,163,74,0) 50%,rgb(22,163,74))}
 .heat-scale{font-variant-numeric:tabular-nums} tr.heat-row:hover{background:none}
"""


def page_html(workspace_name: str) -> str:
    """The page; ``workspace_name`` is shown in the title (escaped)."""
    name = html.escape(workspace_name)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>graftkit studio · {name}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head><body>
<nav><a href="#runs" id="nav-runs">Runs</a><a href="#new" id="nav-new">New run</a><a href="#jobs" id="nav-jobs">Jobs</a>
<a href="#label" id="nav-label">Label</a><a href="#deploy" id="nav-deploy">Deploy</a>
<span>graftkit studio · {name}</span></nav>
<main>{VIEWS}<p id="error" class="error" role="alert"></p></main>
<script>{SCRIPT}</script></body></html>"""
