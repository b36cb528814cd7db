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
class="primary">Predict</button></p><p id="try-result"></p>
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

VIEWS = RUNS + RUN + COMPARE + NEW + JOBS
