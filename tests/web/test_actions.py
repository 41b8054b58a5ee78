"""The inspector's actions and guards: resuming hooks from a form (checked JSON, typed
hooks checked against their schema, nothing lost on a refusal), the JSON twins, and the
Host / cross-site / size checks."""

from __future__ import annotations

from urllib.parse import quote

from tests.web import web_helpers
from tests.web.inspector_client import (
    finish,
    get,
    request,
    section,
    suspend,
    text_of,
    work_until_done,
)
from wfkit.worlds.base import World


def _hook(world: World, run_id: str) -> tuple[str, str]:
    (hook,) = world.hooks.list(run_id=run_id)
    return hook.hook_id, f"/runs/{run_id}/hooks/{quote(hook.hook_id)}/resume"


def test_resume_form_delivers_json_and_the_run_continues(world: World) -> None:
    run_id = suspend(world, web_helpers.awaiting_anything, "go:1")
    page = get(world, f"/runs/{run_id}").text
    _, action = _hook(world, run_id)
    assert f'<form class="resume" method="post" action="{action}">' in section(page, "hooks")
    assert "waiting for hook go:1" in text_of(page.split('<div class="waiting">', 1)[1])
    answer = request(world, "POST", action, data={"payload": '{"colour": "green", "n": [1, 2]}'})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/runs/{run_id}?done=resumed#hooks"
    work_until_done(world, run_id)
    assert world.runs.get(run_id).output == {"colour": "green", "n": [1, 2]}
    assert "Payload delivered" in text_of(get(world, f"/runs/{run_id}?done=resumed").text)


def test_a_payload_that_is_not_json_is_refused_and_kept(world: World) -> None:
    run_id = suspend(world, web_helpers.awaiting_anything, "go:2")
    hook_id, action = _hook(world, run_id)
    typed = '{"colour": green <b>}'
    answer = request(world, "POST", action, data={"payload": typed})
    assert answer.status_code == 400
    form = section(answer.text, "hooks")
    assert "the payload is not JSON" in text_of(form)
    assert typed in text_of(form) and "<b>" not in form  # kept, escaped, to fix and resend
    assert "The payload was not sent" in text_of(answer.text)
    assert [e.event_type for e in world.events.list(run_id)][-1] == "hook_created"
    assert world.hooks.get(hook_id).status == "active"
    empty = request(world, "POST", action, data={"payload": "  "})
    assert empty.status_code == 400 and "the payload is empty" in text_of(empty.text)


def test_a_typed_hook_is_checked_against_the_schema_in_its_metadata(world: World) -> None:
    run_id = suspend(world, web_helpers.awaiting_approval, "o-5")
    hook_id, action = _hook(world, run_id)
    assert "checked against the JSON Schema" in section(get(world, f"/runs/{run_id}").text, "hooks")
    wrong = request(world, "POST", action, data={"payload": '{"approved": "yes", "extra": 1}'})
    assert wrong.status_code == 400
    assert "$.approved: expected boolean, got string" in text_of(wrong.text)
    missing = request(world, "POST", action, data={"payload": '{"note": "hi"}'})
    assert 'missing required field "approved"' in text_of(missing.text)
    assert world.hooks.get(hook_id).status == "active"  # nothing reached the run
    right = request(world, "POST", action, data={"payload": '{"approved": true, "note": "ok"}'})
    assert right.status_code == 303
    work_until_done(world, run_id)
    assert world.runs.get(run_id).status == "completed"
    assert world.runs.get(run_id).output == {"approved": True, "note": "ok"}


def test_resume_json_twin(world: World) -> None:
    run_id = suspend(world, web_helpers.awaiting_approval, "o-6")
    hook_id, _ = _hook(world, run_id)
    path = f"/api/runs/{run_id}/hooks/{hook_id}/resume"
    refused = request(world, "POST", path, content=b'{"approved": 1}')
    assert refused.status_code == 400
    assert refused.json()["problems"] == ["$.approved: expected boolean, got integer"]
    accepted = request(world, "POST", path, content=b'{"approved": false}')
    assert accepted.json() == {"run_id": run_id, "hook_id": hook_id, "resumed": True}
    work_until_done(world, run_id)
    again = request(world, "POST", path, content=b'{"approved": false}')
    assert again.status_code == 409 and "no more payloads" in again.json()["error"]


def test_a_hook_of_another_run_or_no_hook_is_refused(world: World) -> None:
    first = suspend(world, web_helpers.awaiting_anything, "go:3")
    second = suspend(world, web_helpers.awaiting_anything, "go:4")
    hook_id, _ = _hook(world, first)
    other = request(world, "POST", f"/runs/{second}/hooks/{hook_id}/resume", data={"payload": "1"})
    assert other.status_code == 409 and "belongs to another run" in text_of(other.text)
    nothing = request(world, "POST", f"/runs/{first}/hooks/hook_NOPE/resume", data={"payload": "1"})
    assert nothing.status_code == 409 and "There is no hook hook_NOPE" in text_of(nothing.text)
    assert world.hooks.get(hook_id).status == "active"


def test_cross_site_posts_are_refused(world: World) -> None:
    run_id = suspend(world, web_helpers.napping, 3600)
    cancel = f"/runs/{run_id}/cancel"
    for headers in (
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
        {"origin": "http://127.0.0.1:9999"},  # another port is another origin
    ):
        answer = request(world, "POST", cancel, headers=headers)
        assert answer.status_code == 403, headers
    assert world.runs.get(run_id).status == "running"
    same = request(
        world,
        "POST",
        cancel,
        headers={"origin": "http://127.0.0.1:3456", "sec-fetch-site": "same-origin"},
    )
    assert same.status_code == 303 and world.runs.get(run_id).status == "cancelled"


def test_only_loopback_names_and_addresses_are_served(world: World) -> None:
    assert get(world, "/").status_code == 200
    for host in ("localhost:3456", "[::1]:3456", "10.1.2.3:3456"):
        assert request(world, "GET", "/", headers={"host": host}).status_code == 200, host
    rebound = request(world, "GET", "/", headers={"host": "attacker.example:3456"})
    assert rebound.status_code == 400
    assert "does not answer to the host" in rebound.text


def test_an_oversized_payload_is_refused_before_it_is_read(world: World) -> None:
    run_id = suspend(world, web_helpers.awaiting_anything, "go:5")
    _, action = _hook(world, run_id)
    big = '"' + "x" * (1 << 20) + '"'
    answer = request(world, "POST", action, data={"payload": big})
    assert answer.status_code == 413
    assert world.hooks.list(run_id=run_id)[0].status == "active"


def test_retry_runs_a_failed_run_again(world: World) -> None:
    item = f"retry-{world.name}"
    run_id = finish(world, web_helpers.fragile, item)
    assert world.runs.get(run_id).status == "failed"
    page = get(world, f"/runs/{run_id}").text
    assert f'<form method="post" action="/runs/{run_id}/retry">' in page
    assert "Retry run" in text_of(page) and "Cancel run" not in text_of(page)

    web_helpers.fixed[item] = True  # the bug is fixed: the retry replays onto this code
    answer = request(world, "POST", f"/runs/{run_id}/retry")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/runs/{run_id}?done=retried"
    work_until_done(world, run_id)
    assert world.runs.get(run_id).status == "completed"
    assert world.runs.get(run_id).output == f"shipped {item}"
    kinds = [e.event_type for e in world.events.list(run_id)]
    assert kinds.count("run_failed") == 1 and kinds.count("run_retried") == 1
    done = get(world, f"/runs/{run_id}?done=retried").text
    assert "Run retried" in text_of(done) and "Retry run" not in text_of(done)

    again = request(world, "POST", f"/runs/{run_id}/retry")  # completed: nothing to retry
    assert again.headers["location"] == f"/runs/{run_id}?done=not-retried"
    assert [e.event_type for e in world.events.list(run_id)] == kinds
    api = request(world, "POST", f"/api/runs/{run_id}/retry")
    assert api.status_code == 409 and api.json()["error"] == "only a failed run can be retried"
    assert request(world, "POST", "/runs/wrun_nope/retry").status_code == 404
