"""What the studio's tests share: a client addressed to 127.0.0.1, a workspace with one small trained run, and for
the headless-Chromium tests the studio as a process or in a thread and ``Page``, its views driven by element id."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient

from conftest import run_config, write_csv
from deploy_helpers import serving
from graftkit.apps.studio.app import studio_app

ROWS = [["a wonderful film", "pos"], ["a dull film", "neg"], ["great fun", "pos"], ["boring and bad", "neg"]] * 5
TOKEN = "s3cret-token-of-24-chars"
#: generous: a job is a fresh `graftkit train` process (torch import included) on a possibly busy machine
WAIT = 600


def client(workspace, **kw) -> TestClient:
    return TestClient(studio_app(workspace, **kw), base_url="http://127.0.0.1")


def workspace_with_run(ws: Path, tiny_model_dir: str, steps: int, plots: bool) -> Path:
    """``ws`` holding data/reviews.csv and the run ``first`` trained on it for ``steps`` steps."""
    from graftkit.train.trainer import train

    data = write_csv(ws / "data" / "reviews.csv", ROWS)
    cfg = run_config(ws, tiny_model_dir, data, name="first", train={"max_steps": steps},
                     eval={"robustness_rows": 0, "calibrate": False, "plots": plots})
    train(cfg, log=lambda m: None)
    return ws


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def studio_process(workspace, port: int):
    """``graftkit studio WORKSPACE`` as its own process; SIGTERM at the end, as a service manager stops it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "graftkit", "studio", str(workspace), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 240
        while True:
            try:
                urllib.request.urlopen(url + "/api/runs", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"studio did not start: {proc.stderr.read().decode()}") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(90)


@contextmanager
def studio_thread(workspace):
    """The studio app (its lifespan included: job runner, services) under uvicorn in a thread of this process:
    no second torch import, for the tests that need no studio restart."""
    with serving(studio_app(workspace)) as url:
        yield url


class Page:
    """The studio page in one browser: navigation and waits by element id (``wait``: seconds a wait may take)."""

    def __init__(self, browser, url: str, wait: float = WAIT):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.b, self.url, self.By, self.Wait, self.wait = browser, url, By, WebDriverWait, wait

    def open(self, hash_: str) -> None:
        self.b.get(f"{self.url}/#{hash_}")
        self.until(lambda b: b.find_element(self.By.TAG_NAME, "body").get_attribute("data-ready") == hash_)
        assert self.text("error") == ""

    def until(self, check, timeout: float | None = None):
        from selenium.common.exceptions import StaleElementReferenceException

        return self.Wait(self.b, timeout or self.wait, poll_frequency=0.2,  # a table re-rendered under a check
                         ignored_exceptions=(StaleElementReferenceException, IndexError)).until(check)

    def el(self, id_: str):
        return self.b.find_element(self.By.ID, id_)

    def css(self, selector: str, within=None) -> list:
        return (within or self.b).find_elements(self.By.CSS_SELECTOR, selector)

    def text(self, id_: str) -> str:
        return self.el(id_).text

    def texts(self, selector: str) -> list[str]:
        """The text of every element matching ``selector``, read at one instant (a refreshing table stays whole)."""
        return self.b.execute_script("return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)",
                                     selector)

    def set(self, key: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select

        field = self.el(f"f-{key}")
        if field.tag_name == "select":  # a key with choices (train.eval_strategy, ...)
            Select(field).select_by_visible_text(value)
            return
        field.clear()
        field.send_keys(value)

    def launch(self, name: str, **values: str) -> None:
        self.set("name", name)
        for key, value in values.items():
            self.set(key.replace("__", "."), value)
        self.el("launch-btn").click()
        self.until(lambda b: b.execute_script("return location.hash").startswith("#jobs/"))

    def live_state(self, *states: str) -> str:
        self.until(lambda b: self.text("live-state") in states)
        return self.text("live-state")
