"""Shared pytest configuration."""

from __future__ import annotations

import os

import pytest


def postgres_url() -> str | None:
    """The Postgres test server, or None when not configured outside CI.

    In CI (CI=true) a missing URL is an error, never a skip: Postgres tests must run there.
    """
    url = os.environ.get("WFKIT_TEST_POSTGRES_URL")
    if not url and os.environ.get("CI"):
        raise pytest.UsageError(
            "CI=true but WFKIT_TEST_POSTGRES_URL is not set; .ci/run must set it"
        )
    return url


def _hypothesis_profiles() -> None:
    """CI runs hypothesis derandomized (the same examples every run, no flaky reds);
    locally it explores new examples each run."""
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.register_profile("dev", deadline=None)
    settings.load_profile("ci" if os.environ.get("CI") else "dev")


_hypothesis_profiles()
