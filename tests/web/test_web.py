"""``wfkit web`` pages: real runs on every world, pages read as a user would."""

from __future__ import annotations

import re

from tests.web import web_helpers
from tests.web.inspector_client import (
    finish,
    get,
    request,
    runs_rows,
    section,
    suspend,
    text_of,
    work_until_done,
)
from wfkit.runtime.api.client import start_sync
from wfkit.worlds.base import World


def test_runs_list_shows_each_run_with_status_duration_and_error(world: World) -> None:
    ok = finish(world, web_helpers.checkout, "o-7")
    bad = finish(world, web_helpers.declined, "insufficient funds")
    page = get(world, "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    rows = runs_rows(page.text)
    assert len(rows) == 2
    assert rows[0].startswith(f"declined {bad} failed")  # newest first
    assert rows[0].endswith("FatalError: card declined: insufficient funds")
    assert rows[1].startswith(f"checkout {ok} completed")
    assert re.search(r" \d+(\.\d+)? (ms|s)$", rows[1]), rows[1]  # a duration, no error
    assert f'href="/runs/{ok}"' in page.text
    assert '<span class="badge s-failed">failed</span>' in page.text
    assert 'http-equiv="refresh"' not in page.text  # live updates are server-sent events
    assert 'data-live="/live?since=' in page.text


def test_filters_by_status_and_workflow(world: World) -> None:
    ok = finish(world, web_helpers.checkout, "o-1")
    bad = finish(world, web_helpers.declined, "nope")
    failed = runs_rows(get(world, "/?status=failed").text)
    assert [r.split()[1] for r in failed] == [bad]
    by_short = runs_rows(get(world, "/?workflow=checkout").text)
    assert [r.split()[1] for r in by_short] == [ok]
    by_id = runs_rows(get(world, f"/?workflow={web_helpers.checkout}").text)
    assert [r.split()[1] for r in by_id] == [ok]
    assert "No runs." in get(world, "/?status=cancelled").text
    refused = get(world, "/?status=bogus")
    assert refused.status_code == 400 and "unknown status 'bogus'" in text_of(refused.text)
    assert get(world, "/?page=0").status_code == 400
    api = get(world, "/api/runs?status=completed").json()
    assert [r["run_id"] for r in api] == [ok]
    assert api[0] == world.runs.get(ok).model_dump(mode="json")


def test_paging_goes_past_the_first_hundred_runs(world: World) -> None:
    made = [start_sync(web_helpers.checkout, f"o-{i}", world=world).run_id for i in range(105)]
    newest_first = made[::-1]
    first = get(world, "/?per_page=100")
    assert [r.split()[1] for r in runs_rows(first.text)] == newest_first[:100]
    assert 'rel="next" href="/?page=2&amp;per_page=100"' in first.text
    second = get(world, "/?page=2&per_page=100")
    assert [r.split()[1] for r in runs_rows(second.text)] == newest_first[100:]
    assert 'rel="next"' not in second.text and 'rel="prev"' in second.text
    assert "runs 101 to 105" in text_of(second.text)
    # The default page is 50 runs; the JSON twin pages the same way and links the next page.
    api = get(world, "/api/runs?page=3")
    assert [r["run_id"] for r in api.json()] == newest_first[100:]
    assert "link" not in api.headers
    assert get(world, "/api/runs?page=2").headers["link"] == '</api/runs?page=3>; rel="next"'
    pending = runs_rows(first.text)[0]
    assert "queued: no worker has started it yet" in pending


def test_run_page_timeline_and_event_log(world: World) -> None:
    run_id = finish(world, web_helpers.checkout, "o-9")
    page = get(world, f"/runs/{run_id}")
    assert page.status_code == 200
    seen = text_of(page.text)
    assert f"Run {run_id}" in seen
    assert "status completed" in seen and "parent run none" in seen
    assert '"CHARGED 42"' in text_of(section(page.text, "output"))
    timeline = section(page.text, "timeline")
    names = re.findall(
        r'<span class="kind">step</span><span class="badge [^"]+">\w+</span> ([^<]+)</span>',
        timeline,
    )
    assert names == ["fetch_order", "charge_card", "send_receipt"]
    bars = re.findall(
        r'class="seg seg-attempt-ok" style="left:([\d.]+)%;width:([\d.]+)%"', timeline
    )
    assert len(bars) == 3
    lefts = [float(left) for left, _ in bars]
    assert lefts == sorted(lefts)  # in the order they ran
    events = section(page.text, "events")
    types = re.findall(r'<span class="mono event-type">([a-z_]+)</span>', events)
    assert types == [e.event_type for e in world.events.list(run_id)]
    assert types[0] == "run_created" and types[-1] == "run_completed"
    assert events.count("<details><summary>data</summary>") == sum(
        1 for e in world.events.list(run_id) if e.data
    )
    assert "Cancel run" not in page.text and "data-live" not in page.text  # it has ended
    api = get(world, f"/api/runs/{run_id}").json()
    assert api["run"] == world.runs.get(run_id).model_dump(mode="json")
    assert [s["step_name"].rsplit("//", 1)[-1] for s in api["steps"]] == names
    assert [e["event_type"] for e in api["events"]] == types
    assert api["parent_run_id"] is None and api["child_run_ids"] == []


def test_failed_run_shows_error_and_traceback(world: World) -> None:
    run_id = finish(world, web_helpers.declined, "expired")
    page = get(world, f"/runs/{run_id}")
    error = section(page.text, "error")
    assert "card declined: expired" in text_of(error)
    assert "FatalError" in text_of(error)
    assert "<summary>traceback</summary>" in error
    assert "Traceback" in text_of(error) and "_decline" in text_of(error)
    timeline = section(page.text, "timeline")
    assert 'class="seg seg-attempt-failed"' in timeline
    lane = timeline.split('<details class="lane lane-step" id="lane-', 2)[2]
    assert "final error" in text_of(lane) and "card declined: expired" in text_of(lane)


def test_a_retried_step_keeps_each_attempts_error_beside_the_final_outcome(world: World) -> None:
    run_id = finish(world, web_helpers.retried_then_failed, "slow disk")
    step = next(s for s in world.steps.list(run_id) if s.step_name.endswith("//always_busy"))
    assert step.attempt == 2 and step.status == "failed"
    lane = (
        section(get(world, f"/runs/{run_id}").text, "timeline")
        .split(f'id="lane-{step.step_id}"', 1)[1]
        .split("</details>\n", 1)[0]
    )
    attempts = lane.split("<h3>Attempts</h3>", 1)[1].split("</table>", 1)[0]
    rows = runs_rows(attempts)
    assert rows[0].startswith("1 retried") and "busy 1: slow disk" in rows[0]
    assert rows[1].startswith("2 failed") and "busy 2: slow disk" in rows[1]
    assert "final error" in text_of(lane)
    assert lane.count('class="seg seg-attempt-failed"') == 2 and "seg-backoff" in lane


def test_user_data_is_escaped(world: World) -> None:
    evil = "<script>alert(1)</script>"
    run_id = finish(world, web_helpers.checkout, evil)
    for path in ("/", f"/runs/{run_id}"):
        assert "<script>" not in get(world, path).text
    page = get(world, f"/runs/{run_id}").text
    assert "&lt;script&gt;alert(" in page
    assert evil in text_of(page)
    assert "<script>" not in get(world, "/?workflow=" + evil).text
    headers = get(world, "/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    # The page and its live-update fragment share a URL: neither may be cached for the other.
    assert headers["cache-control"] == "no-store" and headers["vary"] == "x-wfkit-partial"
    fragment = request(world, "GET", f"/runs/{run_id}", headers={"x-wfkit-partial": "1"}).text
    assert fragment.startswith("<h1>Run ") and "<html" not in fragment


def test_unknown_run_is_a_404(world: World) -> None:
    for path in ("/runs/wrun_NOPE", "/runs/wrun_NOPE/streams/x", "/api/runs/wrun_NOPE"):
        assert get(world, path).status_code == 404
    assert "Run not found" in get(world, "/runs/wrun_NOPE").text
    assert request(world, "POST", "/runs/wrun_NOPE/cancel").status_code == 404
    assert request(world, "POST", "/api/runs/wrun_NOPE/cancel").status_code == 404


def test_cancel_button_cancels_a_waiting_run(world: World) -> None:
    run_id = suspend(world, web_helpers.napping, 3600)
    assert world.runs.get(run_id).status == "running"
    page = get(world, f"/runs/{run_id}")
    assert f'data-live="/runs/{run_id}/live?since=' in page.text
    assert f'<form method="post" action="/runs/{run_id}/cancel">' in page.text
    assert "sleeping until" in text_of(page.text.split('<div class="waiting">', 1)[1])
    assert 'class="seg seg-sleep"' in section(page.text, "timeline")
    assert '<span class="badge s-waiting">waiting</span>' in section(page.text, "waits")
    assert "sleeping until" in runs_rows(get(world, "/").text)[0]
    answer = request(world, "POST", f"/runs/{run_id}/cancel")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/runs/{run_id}?done=cancelled"
    assert world.runs.get(run_id).status == "cancelled"
    page = get(world, f"/runs/{run_id}?done=cancelled")
    assert "Run cancelled." in text_of(page.text)
    assert "status cancelled" in text_of(page.text)
    assert "Cancel run" not in page.text
    assert "run_cancelled" in section(page.text, "events")
    assert "ended with the run" in section(page.text, "timeline")
    again = request(world, "POST", f"/runs/{run_id}/cancel")
    assert again.headers["location"] == f"/runs/{run_id}?done=not-cancelled"
    assert request(world, "POST", f"/api/runs/{run_id}/cancel").json() == {
        "run_id": run_id,
        "cancelled": False,
    }


def test_parent_and_child_runs_link_both_ways(world: World) -> None:
    parent = finish(world, web_helpers.parenting, "kid")
    child = str(world.runs.get(parent).output)
    work_until_done(world, child)
    page = get(world, f"/runs/{parent}").text
    assert f'href="/runs/{child}"' in section(page, "timeline")
    assert f"child runs {child} completed packing" in text_of(page)
    child_page = get(world, f"/runs/{child}").text
    assert f"parent run {parent}" in text_of(child_page)
    rows = runs_rows(get(world, "/").text)
    assert f"child of {parent}" in next(r for r in rows if child in r.split()[1])
    api = get(world, f"/api/runs/{child}").json()
    assert api["parent_run_id"] == parent
    assert get(world, f"/api/runs/{parent}").json()["child_run_ids"] == [child]


def test_stream_page_shows_decoded_chunks(world: World) -> None:
    from wfkit.runtime.api.streams import stream_name

    run_id = finish(world, web_helpers.streaming)
    page = get(world, f"/runs/{run_id}").text
    default, logs = stream_name(run_id), stream_name(run_id, "logs")
    assert sorted(world.streams.list(run_id)) == sorted([default, logs])
    listed = text_of(section(page, "streams"))
    assert f"default {default}" in listed and f"logs {logs}" in listed
    link = f"/runs/{run_id}/streams/{default}"
    assert f'href="{link}"' in page
    stream = get(world, link)
    assert stream.status_code == 200
    seen = text_of(stream.text)
    assert "Stream default" in seen
    assert "closed · 2 chunk(s)" in seen
    assert repr(b"raw\x00bytes") in seen
    assert '"n": 1' in seen and '"tag": "<b>bold</b>"' in seen
    assert "<b>bold</b>" not in stream.text
    named = text_of(get(world, f"/runs/{run_id}/streams/{logs}").text)
    assert "Stream logs" in named and "open · 1 chunk(s)" in named and '"left open"' in named
    assert get(world, f"/runs/{run_id}/streams/strm_other").status_code == 404


def test_cli_has_a_web_command() -> None:
    from wfkit.cli import build_parser

    args = build_parser().parse_args(["web", "--no-browser", "--port", "4000"])
    assert (args.host, args.port, args.no_browser) == ("127.0.0.1", 4000, True)
    assert args.func.__name__ == "cmd_web"
