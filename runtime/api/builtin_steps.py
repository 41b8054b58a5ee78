"""Built-in steps: ``fetch`` (HTTP as a durable step) and child-run ``start``.

Each is a real step registered under a fixed ID, so a workflow calling it records a
step in its log like any user step, and replays get the recorded response.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wfkit.runtime.gen import StepProxy
from wfkit.runtime.loading import registry

FETCH_STEP_ID = "step//wfkit//fetch"
START_STEP_ID = "step//wfkit//start"


@dataclass(frozen=True)
class FetchResponse:
    """What ``fetch`` returns: status, headers and body, readable in workflow code."""

    status: int
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self, encoding: str = "utf-8") -> str:
        return self.body.decode(encoding)

    def json(self) -> Any:
        return json.loads(self.body)


def _request(
    url: str, method: str, headers: Mapping[str, str], body: bytes | None, timeout: float
) -> FetchResponse:
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return FetchResponse(
                status=response.status,
                url=response.url,
                headers={k.lower(): v for k, v in response.headers.items()},
                body=response.read(),
            )
    except urllib.error.HTTPError as error:  # a status is an answer, not a failure
        return FetchResponse(
            status=error.code,
            url=url,
            headers={k.lower(): v for k, v in error.headers.items()},
            body=error.read(),
        )


async def _fetch(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    json_body: Any = None,
    timeout: float = 30.0,
) -> FetchResponse:
    sent_headers = dict(headers or {})
    data: bytes | None
    if json_body is not None:
        data = json.dumps(json_body).encode("utf-8")
        sent_headers.setdefault("content-type", "application/json")
    else:
        data = body.encode("utf-8") if isinstance(body, str) else body
    return await asyncio.to_thread(_request, url, method.upper(), sent_headers, data, timeout)


async def _start_child(workflow_id: str, args: list[Any], kwargs: dict[str, Any]) -> str:
    """The step behind ``await start(...)`` in workflow code: the child's run id is
    derived from this step's correlation id, so a retried step starts no second child."""
    from wfkit.runtime.api.client import start_sync
    from wfkit.runtime.context import current_step

    step = current_step.get()
    assert step is not None
    child_id = "wrun_" + step.step.step_id.removeprefix("step_")
    return start_sync(workflow_id, *args, run_id=child_id, **kwargs).run_id


registry.register_step(FETCH_STEP_ID, _fetch)
registry.register_step(START_STEP_ID, _start_child)

fetch = StepProxy(FETCH_STEP_ID, "fetch")
"""``await fetch(url, method=..., headers=..., body=..., json_body=..., timeout=...)``.

In a workflow it is a durable step (recorded once, replayed from the log); anywhere
else it simply performs the request. Returns a :class:`FetchResponse`."""

start_child = StepProxy(START_STEP_ID, "start")
"""The durable step a workflow's ``await start(child, ...)`` runs (see wfkit.runtime.api.client.start)."""
