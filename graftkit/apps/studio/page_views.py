"""The studio page's views (one is shown at a time, chosen by the URL's #fragment); page_js.py fills them."""

RUNS = """<section id="view-runs" class="hidden"><h1>Runs</h1>
<p><input id="runs-filter" placeholder="filter by name, task, model or status" size="40">
<button id="compare-btn">Compare selected</button></p>
<table id="runs-table"><thead><tr><th></th><th class="sort" data-key="name">name</th><th class="sort" data-key="task">task</th>
<th class="sort" data-key="base_model">base model</th><th class="sort" data-key="status">status</th>
<th class="sort" data-key="value">main metric</th><th class="sort" data-key="duration_s">duration</th></tr></thead>
<tbody></tbody></table></section>"""

RUN = """<section id="view-run" class="hidden"><h1 id="run-title"></h1><p id="run-summary"></p>
<h2>Try it</h2><p><input id="try-text" size="60" placeholder="type a sentence"> <button id="try-btn"
class="primary">Predict</button></p><p id="try-result"></p><div id="try-heat"></div>
<p>Predict a file: upload <input type="file" id="batch-upload"> or pick <select id="batch-file"></select>
<button id="batch-btn">Predict every row</button></p><p id="batch-note" class="muted"></p><table id="batch-head"></table>
<h2>Metrics</h2><table id="run-metrics"></table>
<h2>Curves</h2><div id="run-curves"></div>
<h2>Plots</h2><div id="run-plots" class="plots"></div>
<h2>Most confident mistakes</h2><p>split <select id="mistake-split"></select> true <select id="mistake-true"></select>
predicted <select id="mistake-predicted"></select> <span id="mistake-count" class="muted"></span></p>
<table id="mistakes"></table><div id="mistake-detail"></div>
<h2>Robustness</h2><table id="run-robustness"></table>
<h2>Data quality</h2><ul id="run-quality"></ul>
<h2>Model card</h2><pre id="run-card"></pre></section>"""

COMPARE = """<section id="view-compare" class="hidden"><h1>Compare <span id="compare-names"></span></h1>
<table id="compare-metrics"></table><p>curve <select id="compare-curve"></select></p><div id="compare-chart"></div>
</section>"""

NEW = """<section id="view-new" class="hidden"><h1>New run</h1>
<h2>1. Data</h2><p>upload <input type="file" id="upload"> or pick <select id="data-file"></select>
<span id="upload-note" class="muted"></span></p><p id="preview-note" class="muted"></p><table id="preview"></table>
<h2>2. Task</h2><p><select id="task"></select></p>
<h2>3. Settings</h2><p class="muted">Every key with its default and description, from the config models. Values
are YAML, as with <code>graftkit train CONFIG --set key=value</code>; only changed values are saved.</p>
<form id="config-form" onsubmit="return false"></form>
<p><button id="check-btn">Check</button><button id="save-btn">Save config</button>
<button id="launch-btn" class="primary">Save and launch</button></p><pre id="form-error" class="error"></pre>
<div id="saved" class="hidden"><p id="saved-note"></p><pre id="saved-yaml"></pre></div></section>"""

JOBS = """<section id="view-jobs" class="hidden"><h1>Jobs</h1><p class="muted">One job runs at a time; the others
wait in order. Stop saves a checkpoint; Resume continues from it.</p>
<table id="jobs-table"><thead><tr><th>job</th><th>run</th><th>config</th><th>state</th><th>progress</th>
<th>validation</th><th></th></tr></thead><tbody></tbody></table>
<div id="job-live" class="hidden"><h2>Job <span id="live-id"></span>: <span id="live-state"></span></h2>
<p><progress id="live-bar" value="0" max="1"></progress> <span id="live-progress"></span></p>
<p id="live-validation" class="muted"></p><p id="live-message"></p><pre id="live-log"></pre></div></section>"""

LABEL = """<section id="view-label" class="hidden"><h1>Label</h1><p class="muted">The run suggests the pool rows
to label next; answer them, import the answers into the run's labelled file (its data.train), then retrain.</p>
<p>run <select id="label-run"></select> pool <select id="label-pool"></select> strategy <select id="label-strategy">
</select> k <input id="label-k" type="number" value="20" min="1" max="500" size="4">
<button id="label-select" class="primary">Suggest rows</button> or open <select id="label-sheets"></select></p>
<div id="label-desk" class="hidden"><p><progress id="label-bar" value="0" max="1"></progress>
<span id="label-progress"></span> · <code id="label-sheet"></code></p>
<p class="muted">row <span id="label-pos"></span> · model suggests <b id="label-suggested"></b></p>
<blockquote id="label-text"></blockquote><p id="label-pair" class="muted"></p><div id="label-buttons"></div>
<p class="muted">Enter: accept the outlined label · 1-9: choose a label · Backspace or u: undo · &larr; &rarr;: move</p>
<p><button id="label-import">Import answers</button><button id="label-retrain" class="primary">Retrain</button></p>
<p id="label-status" class="muted" aria-live="polite"></p></div></section>"""

DEPLOY = """<section id="view-deploy" class="hidden"><h1>Deploy</h1><p>run <select id="deploy-run"></select></p>
<h2>Export to ONNX</h2><p><select id="export-precision"><option value="fp32">fp32</option><option value="int8">fp32 +
int8</option></select> <button id="export-btn" class="primary">Export</button> <span id="export-state"></span></p>
<pre id="export-log"></pre><table id="export-report"></table>
<h2>Local service</h2><p>backend <select id="serve-backend"><option>torch</option><option>onnx</option></select>
precision <select id="serve-precision"><option>fp32</option><option>int8</option></select>
<button id="serve-btn" class="primary">Start</button></p><p id="serve-key" class="hidden">API key (shown once, copy it
now): <code id="serve-key-value"></code></p>
<table id="services-table"><thead><tr><th>run</th><th>url</th><th>state</th><th>backend</th><th></th></tr></thead>
<tbody></tbody></table></section>"""

VIEWS = RUNS + RUN + COMPARE + NEW + JOBS + LABEL + DEPLOY
