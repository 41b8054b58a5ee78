"""A worker process's collector settings (runtime/engine/collector.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from wfkit.runtime.engine.collector import DEFAULT_THRESHOLD, tune_for_worker


@pytest.fixture
def collector() -> Iterator[None]:
    before = gc.get_threshold()
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.usefixtures("collector")
def test_a_worker_freezes_its_loaded_heap_and_collects_young_objects_less_often(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WFKIT_GC_THRESHOLD", raising=False)
    gc.set_threshold(700, 10, 10)
    loaded = [object() for _ in range(3)]  # something alive at start-up
    assert tune_for_worker() == DEFAULT_THRESHOLD
    assert gc.get_threshold() == (DEFAULT_THRESHOLD, 10, 10)
    assert gc.get_freeze_count() > len(loaded)


@pytest.mark.usefixtures("collector")
def test_the_environment_can_keep_pythons_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.set_threshold(700, 10, 10)
    monkeypatch.setenv("WFKIT_GC_THRESHOLD", "0")
    assert tune_for_worker() == 700
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
    monkeypatch.setenv("WFKIT_GC_THRESHOLD", "20000")
    assert tune_for_worker() == 20_000


@pytest.mark.usefixtures("collector")
def test_a_threshold_that_is_not_a_number_warns_and_takes_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WFKIT_GC_THRESHOLD", "lots")
    with caplog.at_level("WARNING", logger="wfkit.worker"):
        assert tune_for_worker() == DEFAULT_THRESHOLD
    assert "WFKIT_GC_THRESHOLD='lots' is not a whole number" in caplog.text
