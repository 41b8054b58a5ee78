"""The inspector in a real browser: headless Chromium (Debian's package) over a local world
with real runs worked by a real worker.

What a user would notice: the runs list says what each run waits on and links a child
to its parent; the run page's waterfall draws visible bars for a step (its failed first
attempt too), a sleep, a hook wait and a child run; clicking a row shows the attempt's
error; a bad payload is refused in the page and a good one resumes the run; the page
follows the run to its end without reloading; Cancel cancels. Screenshots of each page go
to the test's tmp directory (the path is printed).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from tests.web import web_helpers
from tests.web.browser import (
    background_worker,
    require_chromium,
    screenshot,
    serve_inspector,
    start_chromium,
    wait_until,
)
from wfkit.runtime.api.client import start_sync
from wfkit.worlds.base import World

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from wfkit.worlds.local import LocalWorld

    importlib.reload(web_helpers)  # other tests may have cleared the registry
    path = tmp_path_factory.mktemp("browser-world") / "wfkit.db"
    instance = LocalWorld.from_spec(f"sqlite:///{path}")
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def site(world: World) -> Iterator[str]:
    with background_worker(world), serve_inspector(world) as url:
        yield url


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots: {directory}")
    return directory


@pytest.fixture(scope="module")
def browser(site: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    require_chromium()
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()  # before the server stops: an open page holds a live-update stream


def css(driver: WebDriver | WebElement, selector: str) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, selector)


def one(driver: WebDriver | WebElement, selector: str) -> WebElement:
    found = css(driver, selector)
    assert len(found) == 1, f"{selector}: {len(found)} elements"
    return found[0]


def eventually(driver: WebDriver, script: str, what: str, timeout: float = 15) -> None:
    """Wait until a JavaScript expression is true in the page."""
    wait_until(lambda: driver.execute_script(f"return !!({script})"), timeout=timeout, what=what)


def status_of(world: World, run_id: str) -> str:
    return str(world.runs.get(run_id).status)


def hook_is_waiting(world: World, run_id: str) -> bool:
    return any(h.status == "active" for h in world.hooks.list(run_id=run_id))


def test_run_page_timeline_resume_and_live_update(
    world: World, site: str, browser: WebDriver, shots: Path
) -> None:
    run_id = start_sync(web_helpers.fulfil, "lamp", 1.0, 2.0, world=world).run_id
    wait_until(lambda: hook_is_waiting(world, run_id), timeout=20, what="the run to reach its hook")
    child_id = "wrun_" + next(
        s.step_id.removeprefix("step_")
        for s in world.steps.list(run_id)
        if s.step_name == "step//wfkit//start"
    )
    wait_until(lambda: status_of(world, child_id) == "completed", timeout=10, what="the child run")

    browser.get(f"{site}/runs/{run_id}")
    assert "Run " + run_id in one(browser, "h1").text
    assert "waiting for hook approve:lamp" in one(browser, ".waiting").text
    track = one(browser, ".waterfall .wf-row:not(.wf-axis) .wf-track").size["width"]
    bars: dict[str, Any] = {}
    for lane, segment in (
        ("step", "attempt-failed"),
        ("step", "backoff"),
        ("step", "attempt-ok"),
        ("sleep", "sleep"),
        ("hook", "hook"),
        ("child", "child"),
    ):
        found = css(browser, f"details.lane-{lane} .seg-{segment}")
        assert found, f"no {segment} bar in a {lane} lane"
        bars[segment] = found[0]
        # Visible, not a hair-thin tick: at least 5 px on a track of ~1000 px.
        assert found[0].size["width"] >= 5, (segment, found[0].size)
    assert track > 600
    assert bars["sleep"].size["width"] > bars["attempt-ok"].size["width"]
    names = [e.text for e in css(browser, "details.lane .wf-label")]
    assert any("flaky_reserve" in n for n in names) and any("packing" in n for n in names)
    assert any("approve:lamp" in n for n in names)
    screenshot(browser, shots / "run-waiting-on-hook.png")

    # Click the step's row: its attempts, with the first attempt's error, open in place.
    step_lane = next(d for d in css(browser, "details.lane-step") if "flaky_reserve" in d.text)
    step_lane.find_element(By.CSS_SELECTOR, ".seg-attempt-failed").click()
    eventually(
        browser,
        f"document.getElementById('{step_lane.get_attribute('id')}').open",
        "the row to open",
    )
    detail = step_lane.find_element(By.CSS_SELECTOR, ".lane-detail").text
    assert "warehouse busy for lamp" in detail and "retried" in detail and "completed" in detail
    assert '"lamp"' in detail  # the step's input
    # The child run's row links to it; the child links back to its parent.
    assert css(browser, f'details.lane-child a[href="/runs/{child_id}"]')
    screenshot(browser, shots / "run-step-opened.png")

    # A payload that is not JSON is refused in the page and nothing is sent.
    form = one(browser, "form.resume")
    area = form.find_element(By.CSS_SELECTOR, "textarea")
    area.send_keys("{not json")
    form.find_element(By.CSS_SELECTOR, "button").click()
    assert "Not JSON" in form.find_element(By.CSS_SELECTOR, ".form-error").text
    assert hook_is_waiting(world, run_id)
    area.clear()
    area.send_keys('{"ok": true, "by": "browser"}')
    form.find_element(By.CSS_SELECTOR, "button").click()
    eventually(browser, "document.querySelector('.notice')", "the resume notice")
    assert "Payload delivered" in one(browser, ".notice").text

    # From here on the page is not reloaded: live updates bring the run to its end.
    browser.execute_script("window.__sameDocument = 'yes'")
    eventually(
        browser,
        "document.querySelector('dl.meta .badge') && "
        "document.querySelector('dl.meta .badge').textContent === 'completed'",
        "the page to show the run completed",
        timeout=20,
    )
    assert browser.execute_script("return window.__sameDocument") == "yes"
    assert int(browser.execute_script("return document.body.dataset.updates || '0'")) >= 1
    assert status_of(world, run_id) == "completed"
    output = one(browser, "#output + pre").text
    assert '"by": "browser"' in output
    assert "payload received" in (
        one(browser, "details.lane-hook .mark").get_attribute("title") or ""
    )
    screenshot(browser, shots / "run-completed.png")
    screenshot(browser, shots / "run-completed-top.png", whole_page=False)  # docs/inspector.png
    browser.get(f"{site}/runs/{run_id}?scale=linear")
    assert "linear scale" in one(browser, ".wf-axis").text
    assert css(browser, "details.lane-hook .seg-hook")
    screenshot(browser, shots / "run-completed-linear.png")

    browser.get(f"{site}/runs/{child_id}")
    parent_links = css(browser, f'dl.meta a[href="/runs/{run_id}"]')
    assert parent_links, "the child run links to its parent"


def test_runs_list_and_cancel(world: World, site: str, browser: WebDriver, shots: Path) -> None:
    failed = start_sync(web_helpers.declined, "x" * 400, world=world).run_id
    napping = start_sync(web_helpers.napping, 3600, world=world).run_id
    wait_until(lambda: status_of(world, failed) == "failed", timeout=20, what="the failing run")
    wait_until(
        lambda: any(w.status == "waiting" for w in world.waits.list(napping)),
        timeout=20,
        what="the napping run to sleep",
    )

    browser.get(f"{site}/")
    rows = {
        r.find_element(By.CSS_SELECTOR, "td:nth-child(2) a").text: r
        for r in css(browser, "tbody tr")
    }
    assert "sleeping until" in rows[napping].text
    error_cell = rows[failed].find_element(By.CSS_SELECTOR, ".error-summary")
    assert error_cell.text.startswith("FatalError: card declined: xxx")
    # A long error wraps inside the table instead of widening the page.
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 1400
    children = [r for r in rows.values() if "child of" in r.text]
    assert children, "a child run on the page says whose child it is"
    screenshot(browser, shots / "runs-list.png")

    # The list follows new runs without a reload.
    browser.execute_script("window.__sameDocument = 'yes'")
    newcomer = start_sync(web_helpers.napping, 3600, world=world).run_id
    eventually(
        browser, f"document.body.textContent.includes('{newcomer}')", "the new run to appear"
    )
    assert browser.execute_script("return window.__sameDocument") == "yes"

    browser.get(f"{site}/runs/{napping}")
    assert "sleeping until" in one(browser, ".waiting").text
    assert css(browser, "details.lane-sleep .seg-sleep")
    one(browser, "button.cancel").click()
    eventually(browser, "document.querySelector('.notice')", "the cancel notice")
    assert "Run cancelled." in one(browser, ".notice").text
    assert one(browser, "dl.meta .badge").text == "cancelled"
    assert not css(browser, "button.cancel")
    assert status_of(world, napping) == "cancelled"
    screenshot(browser, shots / "run-cancelled.png")


def test_retry_a_failed_run(world: World, site: str, browser: WebDriver, shots: Path) -> None:
    item = "browser-retry"
    run_id = start_sync(web_helpers.fragile, item, world=world).run_id
    wait_until(lambda: status_of(world, run_id) == "failed", timeout=20, what="the run to fail")

    browser.get(f"{site}/runs/{run_id}")
    assert one(browser, "dl.meta .badge").text == "failed"
    assert f"bug: cannot ship {item} yet" in one(browser, "body").text
    assert not css(browser, "button.cancel")
    screenshot(browser, shots / "run-failed.png")

    web_helpers.fixed[item] = True  # the code is fixed: a retry replays onto it
    one(browser, "button.retry").click()
    eventually(browser, "document.querySelector('.notice')", "the retry notice")
    assert "Run retried" in one(browser, ".notice").text
    eventually(
        browser,
        "document.querySelector('dl.meta .badge').textContent === 'completed'",
        "the page to show the retried run completed",
        timeout=20,
    )
    assert not css(browser, "button.retry")
    assert status_of(world, run_id) == "completed"
    assert f'"shipped {item}"' in one(browser, "#output + pre").text
    screenshot(browser, shots / "run-retried.png")
