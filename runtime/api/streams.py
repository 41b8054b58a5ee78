"""Durable streams: steps write chunks, clients read them live or from any index.

``get_writable(namespace=None)`` inside a workflow returns a :class:`StreamHandle`
that can only be passed to steps; inside a step it returns the same handle, bound to
the step's world, whose ``write``/``close`` append to the run's stream. Readers in any
process follow a stream with :func:`read_stream` (``Run.readable``) until it closes.

A chunk is stored as one marker byte and a body: ``b"b"`` + raw bytes for bytes
chunks, ``b"j"`` + serialized JSON for everything else, so bytes come back as bytes
and objects as objects. With encryption or compression on, that whole chunk is sealed
behind an ``encr``/``gzip`` prefix (``wfkit.runtime.serialization.at_rest``).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

from wfkit.runtime.context import current_step, current_workflow
from wfkit.runtime.errors import NotInWorkflowError
from wfkit.worlds.base import World

_BYTES = b"b"
_JSON = b"j"


def stream_name(run_id: str, namespace: str | None = None) -> str:
    """The world-level name of a run's user stream: ``strm_<run ulid>_user[_<ns>]``."""
    base = run_id.replace("wrun_", "strm_", 1) + "_user"
    if namespace is None:
        return base
    encoded = base64.urlsafe_b64encode(namespace.encode("utf-8")).rstrip(b"=").decode("ascii")
    return f"{base}_{encoded}"


def encode_chunk(chunk: Any) -> bytes:
    """One stored chunk: bytes stay bytes, anything else is serialized JSON; sealed
    when encryption or compression is on."""
    from wfkit.runtime.serialization.at_rest import seal_bytes

    if isinstance(chunk, bytes | bytearray | memoryview):
        return seal_bytes(_BYTES + bytes(chunk))
    from wfkit.runtime.serialization import serialize

    return seal_bytes(_JSON + json.dumps(serialize(chunk, path="chunk")).encode("utf-8"))


def decode_chunk(data: bytes) -> Any:
    """The value ``encode_chunk`` stored.

    Raises:
        PayloadDecryptionError: the chunk is encrypted with a key this process lacks.
        ValueError: not a wfkit chunk.
    """
    from wfkit.runtime.serialization.at_rest import open_bytes

    data = open_bytes(data)
    marker, body = data[:1], data[1:]
    if marker == _BYTES:
        return body
    if marker == _JSON:
        from wfkit.runtime.serialization import deserialize

        return deserialize(json.loads(body.decode("utf-8")))
    raise ValueError(f"not a wfkit stream chunk (marker {marker!r})")


class StreamHandle:
    """A run's writable stream. In a workflow it is only a name to pass to steps; in
    a step, ``await handle.write(chunk)`` appends and ``await handle.close()`` ends it."""

    def __init__(self, run_id: str, namespace: str | None = None) -> None:
        self.run_id = run_id
        self.namespace = namespace
        self.name = stream_name(run_id, namespace)

    def __repr__(self) -> str:
        return f"<wfkit stream {self.name}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StreamHandle) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def _world(self, action: str) -> World:
        if current_workflow.get() is not None:
            raise NotInWorkflowError(
                f"a stream cannot be {action} inside a workflow function: pass the handle "
                "from get_writable() to a step, and write to it there"
            )
        step = current_step.get()
        if step is None or step.world is None:
            raise NotInWorkflowError(f"a stream can only be {action} inside a step function")
        return step.world

    async def write(self, chunk: Any) -> int:
        """Append one chunk (bytes, or any serializable value); returns its index."""
        world = self._world("written")
        return world.streams.append(self.run_id, self.name, encode_chunk(chunk))

    async def close(self) -> None:
        """End the stream: readers stop after the last chunk."""
        world = self._world("closed")
        world.streams.close(self.run_id, self.name)


def get_writable(namespace: str | None = None) -> StreamHandle:
    """The run's stream (the default one, or ``namespace``), in a workflow or a step.

    Raises:
        NotInWorkflowError: called outside any workflow or step.
    """
    workflow = current_workflow.get()
    if workflow is not None:
        return StreamHandle(workflow.metadata.workflow_run_id, namespace)
    step = current_step.get()
    if step is not None:
        return StreamHandle(step.run_id, namespace)
    raise NotInWorkflowError("get_writable() can only be called inside a workflow or step function")


async def read_stream(
    world: World,
    run_id: str,
    namespace: str | None = None,
    *,
    start_index: int = 0,
    poll_timeout: float = 1.0,
) -> AsyncIterator[Any]:
    """Every chunk of a run's stream from ``start_index`` (negative: counted from the end
    of the chunks written so far), following it until it closes. The world is read in
    worker threads, never on the caller's event loop."""
    name = stream_name(run_id, namespace)
    index = start_index
    while True:
        page = await asyncio.to_thread(world.streams.read, run_id, name, start_index=index)
        for data in page.chunks:
            yield decode_chunk(data)
        index = page.next_index
        if page.closed and not page.chunks:
            return
        if not page.chunks:
            await asyncio.to_thread(
                world.streams.wait, run_id, name, after_index=index, timeout=poll_timeout
            )


def register_stream_codec() -> None:
    """Teach the serializer to carry stream handles between workflow, steps and clients."""
    from wfkit.runtime.serialization import register_codec

    register_codec(
        "stream",
        StreamHandle,
        lambda handle: {"run_id": handle.run_id, "namespace": handle.namespace},
        lambda data: StreamHandle(data["run_id"], data["namespace"]),
    )


register_stream_codec()
