"""The golden logs with their payloads sealed (encrypted and compressed) replay to the
same end as the plain ones, and a log that mixes plain and sealed events does too:
every reader on the replay path opens envelopes, whatever event kind carries them."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.golden.test_golden_logs import LOGS, RECORDED_BUGS, _by_value, _load, golden_build
from wfkit.runtime.loading import registry
from wfkit.runtime.replay.session import Completed, Failed, replay
from wfkit.runtime.serialization import deserialize, deserialize_call, deserialize_error
from wfkit.runtime.serialization.at_rest import seal, seal_error
from wfkit.runtime.serialization.keys import configure_payloads, reset_payload_settings
from wfkit.worlds.base import Event

__all__ = ["golden_build"]  # the fixture, used by name below

KEY = "golden:" + base64.b64encode(b"G" * 32).decode()
PAYLOAD_FIELDS = ("input", "output", "result", "payload", "metadata")
ENDING_AS_RECORDED = [p for p in LOGS if p.stem not in RECORDED_BUGS]
"""(A log whose recorded end was a since-fixed bug is test_golden_logs' business.)"""


@pytest.fixture(autouse=True)
def sealing() -> Iterator[None]:
    configure_payloads(KEY, compress_over=64)
    yield
    reset_payload_settings()


def _sealed(event: Event) -> Event:
    data = dict(event.data)
    for field in PAYLOAD_FIELDS:
        if data.get(field) is not None:
            data[field] = seal(data[field])
    if isinstance(data.get("error"), dict):
        data["error"] = seal_error(data["error"])
    return event.model_copy(update={"data": data})


@pytest.mark.parametrize("every", [1, 2], ids=["all sealed", "every other sealed"])
@pytest.mark.parametrize("path", ENDING_AS_RECORDED, ids=lambda p: p.stem)
def test_a_sealed_log_replays_to_its_recorded_end(
    path: Path, every: int, golden_build: None
) -> None:
    run, events, _ = _load(path)
    sealed = [_sealed(e) if i % every == 0 else e for i, e in enumerate(events)]
    assert any(e.data != s.data for e, s in zip(events, sealed, strict=True))
    run = run.model_copy(update={"input": seal(run.input)})
    terminal = sealed[-1]
    args, kwargs, _, _ = deserialize_call(run.input)
    outcome = replay(
        registry.get_workflow(run.workflow_name), run, sealed[:-1], args=args, kwargs=kwargs
    )
    if terminal.event_type == "run_completed":
        assert isinstance(outcome, Completed), outcome
        assert _by_value(outcome.value) == _by_value(deserialize(terminal.data["output"]))
    else:
        assert isinstance(outcome, Failed) and outcome.code == terminal.data["error_code"]
        recorded_error = deserialize_error(terminal.data["error"])
        assert type(outcome.error) is type(recorded_error)
        assert str(outcome.error) == str(recorded_error)
