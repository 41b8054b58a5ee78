"""Fixtures of the transformer tests (the plumbing lives in ``snapshot_support``)."""

from __future__ import annotations

import pytest
from snapshot_support import DiagnosticsSnapshot, JsonSnapshot, PythonSnapshot
from syrupy.assertion import SnapshotAssertion


@pytest.fixture
def py_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(PythonSnapshot)


@pytest.fixture
def json_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JsonSnapshot)


@pytest.fixture
def diagnostics_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(DiagnosticsSnapshot)
