"""Whether OpenTelemetry is on, decided without importing it.

wfkit never imports ``opentelemetry`` on its own. An application that sets up
tracing or metrics has imported ``opentelemetry.trace`` / ``opentelemetry.metrics``
(the SDK's set-up does, and so does ``opentelemetry-instrument``), so a look at
``sys.modules`` says whether it can be on at all; the API's global provider then
says whether it is configured: the API's proxy and no-op providers mean it is
not. When either answer is no, ``tracer()`` and ``meter()`` return None and every
hook in the engine is one function call that returns at once. A provider named
only by ``OTEL_PYTHON_TRACER_PROVIDER`` / ``OTEL_PYTHON_METER_PROVIDER`` is found
too: with one of those set, the API is imported on first use.

The answer is asked again on every call (a dict lookup and the API's provider
getter), so an application may configure OpenTelemetry after wfkit started;
the tracer and meter are cached per provider.

Rejected: always going through the API (its proxy tracer makes a non-recording
span per call: microseconds per step, a tenth of a trivial step's cost), and an
explicit ``wfkit.instrument(...)`` call (one more thing to set up: the global
providers are what OpenTelemetry users already configure).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter, MeterProvider
    from opentelemetry.trace import Tracer, TracerProvider

__all__ = ["INSTRUMENTATION_NAME", "instrumentation_version", "meter", "tracer"]

INSTRUMENTATION_NAME = "wfkit"
"""The name of wfkit's tracer and meter (what exporters show as the instrumentation scope)."""


@functools.cache
def instrumentation_version() -> str:
    """wfkit's installed version ("" when it is not installed as a distribution)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wfkit")
    except PackageNotFoundError:
        return ""


@functools.cache
def _named_by_environment(variable: str) -> bool:
    return bool(os.environ.get(variable))


# --- traces -----------------------------------------------------------------------------

_tracer_provider_getter: Callable[[], TracerProvider] | None = None
_tracer_cache: tuple[object, Tracer | None] = (None, None)


def tracer() -> Tracer | None:
    """wfkit's tracer from the configured global ``TracerProvider``, or None when
    OpenTelemetry is not installed, not imported or not configured."""
    global _tracer_cache
    getter = _tracer_provider_getter or _load_tracer_provider_getter()
    if getter is None:
        return None
    provider = getter()
    cached_provider, cached_tracer = _tracer_cache
    if provider is cached_provider:
        return cached_tracer
    from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider

    found: Tracer | None = None
    if not isinstance(provider, ProxyTracerProvider | NoOpTracerProvider):
        found = provider.get_tracer(INSTRUMENTATION_NAME, instrumentation_version())
    _tracer_cache = (provider, found)
    return found


def _load_tracer_provider_getter() -> Callable[[], TracerProvider] | None:
    global _tracer_provider_getter
    if "opentelemetry.trace" not in sys.modules and not _named_by_environment(
        "OTEL_PYTHON_TRACER_PROVIDER"
    ):
        return None
    try:
        module = importlib.import_module("opentelemetry.trace")
    except ImportError:
        return None
    getter: Callable[[], TracerProvider] = module.get_tracer_provider
    _tracer_provider_getter = getter
    return getter


# --- metrics ----------------------------------------------------------------------------

_meter_provider_getter: Callable[[], MeterProvider] | None = None
_meter_cache: tuple[object, Meter | None] = (None, None)


def meter() -> Meter | None:
    """wfkit's meter from the configured global ``MeterProvider``, or None when
    OpenTelemetry is not installed, not imported or not configured."""
    global _meter_cache
    getter = _meter_provider_getter or _load_meter_provider_getter()
    if getter is None:
        return None
    provider = getter()
    cached_provider, cached_meter = _meter_cache
    if provider is cached_provider:
        return cached_meter
    from opentelemetry.metrics import NoOpMeterProvider

    found: Meter | None = None
    # The API's stand-in before any provider is set is a private class: recognised by name.
    unset = type(provider).__name__ == "_ProxyMeterProvider"
    if not unset and not isinstance(provider, NoOpMeterProvider):
        found = provider.get_meter(INSTRUMENTATION_NAME, instrumentation_version())
    _meter_cache = (provider, found)
    return found


def _load_meter_provider_getter() -> Callable[[], MeterProvider] | None:
    global _meter_provider_getter
    if "opentelemetry.metrics" not in sys.modules and not _named_by_environment(
        "OTEL_PYTHON_METER_PROVIDER"
    ):
        return None
    try:
        module = importlib.import_module("opentelemetry.metrics")
    except ImportError:
        return None
    getter: Callable[[], MeterProvider] = module.get_meter_provider
    _meter_provider_getter = getter
    return getter
