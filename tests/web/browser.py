"""Serving the inspector on localhost with a worker, and driving Debian's headless Chromium.

Used by ``test_browser.py``. Chromium is started with everything that would reach the
network turned off (this machine's network is closed) and a fresh profile.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from wfkit.runtime.engine.worker import Worker
from wfkit.runtime.tools.web import create_web_app
from wfkit.worlds.base import World

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


def require_chromium() -> None:
    """Skip outside CI when Chromium is not installed; in CI its absence is a failure
    (``.ci/run`` installs it)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    message = f"missing {', '.join(missing)}: apt-get install -y chromium chromium-driver"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def start_chromium(profile: Path) -> WebDriver:
    """Headless Chromium driven through the system chromedriver, with a fresh profile."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(20)
    return driver


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_inspector(world: World) -> Iterator[str]:
    """The inspector over ``world`` on a localhost port, in a thread; yields its URL."""
    port = _free_port()
    config = uvicorn.Config(create_web_app(world), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="inspector", daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10, what="the inspector to listen")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def background_worker(world: World) -> Iterator[None]:
    """A worker consuming ``world``'s queues in its own thread and event loop."""
    stop = threading.Event()

    async def work() -> None:
        stopped = asyncio.Event()
        worker = Worker(world=world, poll_interval=0.02, sweep_interval=0)
        task = asyncio.create_task(worker.run(stopped))
        while not stop.is_set():
            await asyncio.sleep(0.02)
        stopped.set()
        await task

    thread = threading.Thread(target=asyncio.run, args=(work(),), name="worker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=15)


def wait_until(condition: Callable[[], object], *, timeout: float, what: str) -> None:
    """Poll ``condition`` until it is truthy.

    Raises:
        AssertionError: ``timeout`` seconds passed first (says what was awaited).
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def screenshot(driver: WebDriver, path: Path, *, whole_page: bool = True) -> Path:
    """Save the page as a PNG: all of it (the window grown to the page's height), or the
    top of it as a 1400 x 1000 window shows it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    if not whole_page:
        driver.save_screenshot(str(path))
        return path
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(1400, min(max(height + 40, 600), 5000))
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
    return path
