"""Headless Chromium for the application page tests (Debian's chromium + chromium-driver, driven by selenium)."""
from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="module")
def browser_factory(tmp_path_factory):
    """``browser_factory()`` → a fresh headless Chromium driver (closed after the module)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("needs Debian's `chromium` and `chromium-driver` on PATH (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers = []

    def make():
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
            opts.add_argument(flag)
        drivers.append(webdriver.Chrome(service=Service(driver), options=opts))
        return drivers[-1]

    yield make
    for d in drivers:
        d.quit()
