"""Screenshots of graftkit studio for the README (docs/img/studio-*.png), taken in headless Chromium at 1280x800.

    python scripts/studio_screenshots.py WORKSPACE [--run NAME] [--other NAME] [--data FILE] [--pool FILE] [--out DIR]

WORKSPACE holds finished runs (two for the compare view), a labelled file and a pool in data/. The studio runs on
it in this process (a free port of 127.0.0.1) and Chromium is driven with selenium, as tests/test_studio_pages.py
drives it (Debian's chromium and chromium-driver, the dev extra's selenium). The script writes to the workspace what
a user would: a label sheet with one answer, the run's ONNX export; a local service is started and stopped, and its
API key is masked in the image. Images are reduced to 256 colours, so they stay small enough to commit.

The images in docs/img come from two runs of the bundled MiniLM on examples/financial_news.csv (each a few
minutes on 2 CPU cores) and a pool of 60 new sentences from the same generator, unlabelled:

    mkdir -p ws/data ws/configs && cp examples/financial_news.csv ws/data/
    sed 's#\\.\\./examples/#../data/#' configs/demo-sentiment.yaml > ws/configs/demo-sentiment.yaml
    (cd ws && graftkit train configs/demo-sentiment.yaml &&
     graftkit train configs/demo-sentiment.yaml --set name=demo-sentiment-lr2e-5 --set train.learning_rate=2e-5)
    PYTHONPATH=examples python -c "import csv, random, make_financial_news as m; rng = random.Random(7); \\
    csv.writer(open('ws/data/news_pool.csv', 'w')).writerows([['text']] + [[m.sentence(rng, y)] for y in \\
    ['negative', 'neutral', 'positive'] * 20])"
    python scripts/studio_screenshots.py ws --run demo-sentiment --other demo-sentiment-lr2e-5 \\
        --data data/financial_news.csv --pool data/news_pool.csv
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

SIZE = (1280, 800)
SENTENCE = "Quarterly profit fell 20% as demand for the company's products weakened"
WAIT = 900  # seconds: an ONNX export of MiniLM with its parity check takes a while on 2 cores


@contextmanager
def studio(workspace: Path):
    """The studio over ``workspace`` under uvicorn in a thread; yields its URL."""
    import uvicorn

    from graftkit.apps.studio.app import studio_app
    from graftkit.apps.studio.deploy import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(studio_app(workspace), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit("the studio did not start")
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


@contextmanager
def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        raise SystemExit("needs Debian's chromium and chromium-driver on PATH")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    with tempfile.TemporaryDirectory() as profile:
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                     "--force-device-scale-factor=1", f"--window-size={SIZE[0]},{SIZE[1]}",
                     f"--user-data-dir={profile}"):
            opts.add_argument(flag)
        browser = webdriver.Chrome(service=Service(driver), options=opts)
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",  # the viewport itself, not the window
                                {"width": SIZE[0], "height": SIZE[1], "deviceScaleFactor": 1, "mobile": False})
        try:
            yield browser
        finally:
            browser.quit()


class Shots:
    """The studio's views, opened, acted on and saved one by one."""

    def __init__(self, browser, url: str, out: Path):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select, WebDriverWait

        self.b, self.url, self.out, self.By, self.Select = browser, url, out, By, Select
        self.waiter = lambda timeout: WebDriverWait(browser, timeout, poll_frequency=0.3)

    def wait(self, check, timeout: float = 120):
        """Until ``check(browser)`` is true; a refusal shown on the page stops the script with its message."""
        return self.waiter(timeout).until(lambda b: check(b) or self.check())

    def open(self, hash_: str) -> None:
        self.b.get(f"{self.url}/#{hash_}")
        self.wait(lambda b: self.el("body", "tag").get_attribute("data-ready") == hash_)
        self.check()

    def el(self, key: str, by: str = "id"):
        return self.b.find_element({"id": self.By.ID, "css": self.By.CSS_SELECTOR, "tag": self.By.TAG_NAME}[by], key)

    def check(self) -> None:
        if error := self.el("error").text:
            raise SystemExit(f"the studio refused: {error}")
        return None

    def top(self, element_id: str, up: int = 1) -> None:
        """Scroll so that the element ``up`` siblings above ``element_id`` (its heading) is at the top."""
        self.b.execute_script("let e = document.getElementById(arguments[0]); "
                              "for (let i = 0; i < arguments[1]; i++) e = e.previousElementSibling; e.scrollIntoView()",
                              element_id, up)

    def save(self, name: str) -> None:
        from PIL import Image

        self.check()
        path = self.out / f"studio-{name}.png"
        self.b.save_screenshot(str(path))
        Image.open(path).convert("RGB").quantize(colors=256).save(path, optimize=True)
        print(f"{path} ({path.stat().st_size // 1024} KiB)")

    def plain(self, hash_: str, name: str) -> None:
        self.open(hash_)
        self.save(name)

    def run_page(self, run: str) -> None:
        self.open(f"run/{run}")
        self.top("run-metrics")
        self.save("run")
        self.el("#mistakes button.explain-btn", "css").click()
        self.wait(lambda b: b.find_elements(self.By.CSS_SELECTOR, "#mistakes tr.heat-row .tok, .heat-error"))
        self.top("mistakes", 2)
        self.save("mistakes")

    def new_run(self, data: str) -> None:
        self.open("new")
        self.Select(self.el("data-file")).select_by_value(data)
        self.wait(lambda b: self.el("preview-note").text)
        self.b.execute_script("document.getElementById('task').parentElement.previousElementSibling.scrollIntoView()")
        self.save("new")

    def try_heatmap(self, run: str) -> None:
        self.open(f"run/{run}")
        self.el("try-text").send_keys(SENTENCE)
        self.el("try-btn").click()
        self.wait(lambda b: b.find_elements(self.By.ID, "try-explain")).pop().click()
        self.wait(lambda b: b.find_elements(self.By.CSS_SELECTOR, "#try-heat .tok, #try-heat .heat-error"))
        self.save("try")

    def label(self, run: str, pool: str) -> None:
        self.open("label")
        self.Select(self.el("label-run")).select_by_value(run)
        self.Select(self.el("label-pool")).select_by_value(pool)
        self.el("label-k").clear()
        self.el("label-k").send_keys("10")
        self.el("label-select").click()
        self.wait(lambda b: self.el("label-progress").text.startswith("0 / "), WAIT)
        self.el("body", "tag").send_keys("\ue007")  # Enter: accept the model's suggestion for the first row
        self.wait(lambda b: self.el("label-progress").text.startswith("1 / "))
        self.save("label")

    def deploy(self, run: str) -> None:
        self.open("deploy")
        self.Select(self.el("deploy-run")).select_by_value(run)
        self.el("export-btn").click()  # a run exported before shows "complete" until the new export is running
        self.wait(lambda b: self.el("export-state").text == "running")
        self.wait(lambda b: self.el("export-state").text in ("complete", "failed"), WAIT)
        self.el("serve-btn").click()
        self.wait(lambda b: any(s in self.el("services-table").text for s in ("ready", "exited")), WAIT)
        self.b.execute_script("const k = document.getElementById('serve-key-value'); "
                              "k.textContent = '\u2022'.repeat(k.textContent.length)")  # no key in an image
        self.save("deploy")
        self.el("#services-table button", "css").click()
        self.wait(lambda b: "exited" in self.el("services-table").text, 60)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workspace", type=Path)
    ap.add_argument("--run", help="the run shown (default: the first complete one)")
    ap.add_argument("--other", help="the run compared with it (default: the next complete one)")
    ap.add_argument("--data", help="the labelled data file of the new-run view (default: the workspace's first)")
    ap.add_argument("--pool", help="the pool file of the label view (default: the workspace's last data file)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "img")
    args = ap.parse_args(argv)
    complete = sorted(p.parent.name for p in (args.workspace / "runs").glob("*/COMPLETE"))
    if len(complete) < 2:
        raise SystemExit(f"{args.workspace}/runs needs two finished runs (one for the pages, two to compare)")
    run = args.run or complete[0]
    other = args.other or next(n for n in complete if n != run)
    files = sorted(p.relative_to(args.workspace).as_posix() for p in (args.workspace / "data").iterdir())
    data, pool = args.data or files[0], args.pool or files[-1]
    args.out.mkdir(parents=True, exist_ok=True)
    with studio(args.workspace) as url, chromium() as browser:
        shots = Shots(browser, url, args.out)
        shots.plain("runs", "runs")
        shots.run_page(run)
        shots.plain(f"compare/{run},{other}", "compare")
        shots.new_run(data)
        shots.try_heatmap(run)
        shots.label(run, pool)
        shots.deploy(run)


if __name__ == "__main__":
    main()
