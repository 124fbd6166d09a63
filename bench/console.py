"""The console's page load times against the local stack: `headroom up --autoscale` with its console, a load through
the gateway, then each page opened in headless Chromium until Streamlit has drawn it (a chart, or an error)."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PAGES = (("", "Cost"), ("planner", "Capacity planner"), ("autoscaler", "Autoscaler"), ("slos", "SLOs and alerts"))
LOADS = 5  # per page
TESTIDS = ("stVegaLiteChart", "stException", "stAlertContentError", "stDataFrame")


def chromium():
    """Debian's chromium, headless, driven through Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,2000"):
        options.add_argument(arg)
    options.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def open_page(browser, url: str, timeout_s: float = 60) -> dict[str, int]:
    """Load a page and wait until Streamlit has run it: a chart or an error shows and the app is no longer running."""
    from selenium.webdriver.common.by import By

    count = lambda testid: len(browser.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'))
    browser.get(url)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        running = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        if (count("stVegaLiteChart") or count("stException") or count("stAlertContentError")) and not running:
            return {t: count(t) for t in TESTIDS}
        time.sleep(0.05)
    return {t: count(t) for t in TESTIDS}


def started_stack(run_dir: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    """`headroom up` with the autoscaler and the console on free ports, and the URLs it printed."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "headroom",
            "up",
            "--autoscale",
            "--replicas",
            "1",
            "--port",
            "0",
            "--prometheus-port",
            "0",
            "--console-port",
            "0",
            "--cold-start",
            "1",
            "--run-dir",
            str(run_dir),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    urls, deadline = {}, time.time() + 180
    while time.time() < deadline:
        line = proc.stderr.readline()
        match = re.match(r".*?(gateway|console)\s+(http://\S+)", line)
        if match:
            urls[match.group(1)] = match.group(2)
        if "Ctrl-C stops everything" in line:
            return proc, urls
    proc.kill()
    raise RuntimeError("headroom up did not come up within 180 s")


def page_load_times() -> list[dict]:
    from headroom.demo import run_demo_load
    from serving.profiles import load_profile

    with tempfile.TemporaryDirectory() as folder:
        proc, urls = started_stack(Path(folder) / "run")
        browser = None
        try:
            model = load_profile("llama-3.1-8b-h100").model.name
            asyncio.run(run_demo_load(urls["gateway"], model, rate=20, duration_s=30))
            time.sleep(10)
            browser = chromium()
            rows = []
            for path, title in PAGES:
                seconds = []
                for _ in range(LOADS):
                    started = time.perf_counter()
                    found = open_page(browser, f"{urls['console']}/{path}")
                    seconds.append(time.perf_counter() - started)
                rows.append(
                    {
                        "page": title,
                        "p50": float(np.median(seconds)),
                        "max": max(seconds),
                        "errors": found["stException"] + found["stAlertContentError"],
                    }
                )
            return rows
        finally:
            if browser is not None:
                browser.quit()
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


def console_section() -> str:
    from bench.__main__ import _table

    rows = page_load_times()
    return "\n".join(
        [
            "## Console page load times",
            "",
            (
                f"`headroom up --autoscale` with its console on this machine, 30 s of load through the gateway at 20 req/s, "
                f"then each page opened {LOADS} times in headless Chromium (Debian's, through chromedriver): seconds from "
                "the request until Streamlit has run the page and drawn its charts. The first load of a page fills the "
                "15 s query cache; later loads within 15 s read it."
            ),
            "",
            _table(
                rows,
                [
                    ("page", "page", ""),
                    ("p50", "p50 s", "{:.2f}"),
                    ("max", "max s", "{:.2f}"),
                    ("errors", "error elements", ""),
                ],
            ),
        ]
    )
