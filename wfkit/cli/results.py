"""``wfkit result``, ``resume`` and ``stream``: what a run gives back, and what it waits for.

Exit statuses: 0 done; 1 an error (no such run or hook, a failed or cancelled run, a
payload refused); 3 ``result`` of a run that has not ended (yet).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from wfkit.cli.common import Subcommands, add_command, world_of

NOT_ENDED = 3
"""``wfkit result``'s exit status for a run still pending or running."""


def cmd_result(args: argparse.Namespace) -> int:
    """Print a run's result; a failed run's error goes to stderr (exit 1)."""
    from wfkit.runtime.api.client import Run
    from wfkit.runtime.errors import (
        SerializationError,
        WorkflowRunCancelledError,
        WorkflowRunFailedError,
    )
    from wfkit.worlds.base import RUN_TERMINAL

    world = world_of(args)
    record = world.runs.get(args.run_id)
    if record.status not in RUN_TERMINAL and not args.wait:
        print(
            f"wfkit result: run {args.run_id} is {record.status}; it has no result yet "
            "(--wait waits for it)",
            file=sys.stderr,
        )
        return NOT_ENDED
    run: Run[Any] = Run(args.run_id, world)
    try:
        try:
            value = run.result_sync(timeout=args.timeout)
        except SerializationError:
            _load_build_for_classes()  # the result holds a class of the project's build
            value = run.result_sync(timeout=0)
    except WorkflowRunFailedError as exc:
        code = exc.error_code
        suffix = f" [{code}]" if code else ""
        print(
            f"wfkit result: run {args.run_id} failed{suffix}: "
            f"{_short_type(str(exc.error.get('type', '')))}: {exc.error.get('message', '')}",
            file=sys.stderr,
        )
        if args.traceback and exc.stack:
            print(exc.stack.rstrip("\n"), file=sys.stderr)
        return 1
    except WorkflowRunCancelledError:
        print(f"wfkit result: run {args.run_id} was cancelled", file=sys.stderr)
        return 1
    except TimeoutError:
        status = world.runs.get(args.run_id).status
        print(
            f"wfkit result: run {args.run_id} is still {status} after {args.timeout:g} s",
            file=sys.stderr,
        )
        return NOT_ENDED
    except SerializationError as exc:  # no build here knows its classes: show it as stored
        print(f"wfkit result: shown as stored ({exc})", file=sys.stderr)
        value = world.runs.get(args.run_id).output
    print(render_value(value))
    return 0


def _load_build_for_classes() -> None:
    """Load the project's build, when there is one, so its classes can be rebuilt."""
    from wfkit.runtime.errors import InvalidBuildError
    from wfkit.runtime.loading.loader import load_build

    try:
        load_build()
    except (FileNotFoundError, InvalidBuildError):
        pass  # the caller reports the value as stored


def _short_type(qualified: str) -> str:
    """``builtins.ValueError`` as ``ValueError``; other types keep their module."""
    return qualified.removeprefix("builtins.")


def render_value(value: Any) -> str:
    """A value as indented JSON where it can be; classes with ``__wfkit_serialize__``,
    dataclasses, pydantic models and sets as the nearest JSON; bytes and other objects as
    their repr."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=_jsonable)


def _jsonable(value: Any) -> Any:
    to_data = getattr(value, "__wfkit_serialize__", None)
    if callable(to_data) and not isinstance(value, type):
        return to_data()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return repr(value)


def cmd_resume(args: argparse.Namespace) -> int:
    """Deliver a JSON payload to the live hook holding a token."""
    from wfkit.runtime.api.client import get_hook_by_token_sync, resume_hook_sync
    from wfkit.runtime.tools.hook_payloads import check_payload, schema_of

    text = sys.stdin.read() if args.payload == "-" else args.payload
    world = world_of(args)
    hook = get_hook_by_token_sync(args.token, world=world)  # HookNotFoundError: exit 1
    check = check_payload(text, schema_of(hook.metadata))
    if not check.ok:
        print(f"wfkit resume: nothing sent: {'; '.join(check.problems)}", file=sys.stderr)
        return 1
    resumed = resume_hook_sync(args.token, check.value, world=world)
    print(f"resumed hook {resumed.hook_id} of run {resumed.run_id}")
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    """Print a run's stream: bytes as they are, other chunks one JSON line each."""
    from wfkit.runtime.api.streams import decode_chunk, stream_name
    from wfkit.worlds.base import RUN_TERMINAL

    world = world_of(args)
    world.runs.get(args.run_id)  # RunNotFoundError: exit 1
    name = stream_name(args.run_id, args.namespace)
    index = args.start_index
    while True:
        page = world.streams.read(args.run_id, name, start_index=index)
        for data in page.chunks:
            _write_chunk(decode_chunk(data))
        index = page.next_index
        if page.closed or not args.follow:
            return 0
        if not page.chunks:
            if world.runs.get(args.run_id).status in RUN_TERMINAL:
                # An ended run writes nothing more; read once more for a last chunk.
                last = world.streams.read(args.run_id, name, start_index=index)
                for data in last.chunks:
                    _write_chunk(decode_chunk(data))
                return 0
            world.streams.wait(args.run_id, name, after_index=index, timeout=args.poll)
            time.sleep(0)  # let Ctrl-C in between waits


def _write_chunk(value: Any) -> None:
    if isinstance(value, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(value)
        sys.stdout.buffer.flush()
        return
    text = value if isinstance(value, str) else json.dumps(value, default=_jsonable)
    print(text, flush=True)


def register(sub: Subcommands) -> None:
    """Add ``result``, ``resume`` and ``stream`` to the ``wfkit`` parser."""
    p = add_command(
        sub,
        "result",
        help="print a run's result (a failed run's error on stderr, exit 1)",
        description="Print a run's result as JSON. A failed or cancelled run prints its "
        "error on stderr and exits 1; a run that has not ended says so and exits 3.",
    )
    p.add_argument("run_id", metavar="RUN", help="the run's id (wrun_...)")
    p.add_argument("--wait", action="store_true", help="wait for a pending or running run to end")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="with --wait: give up after this many seconds (exit 3); none: wait forever",
    )
    p.add_argument(
        "--traceback", action="store_true", help="also print a failed run's stored traceback"
    )
    p.set_defaults(func=cmd_result)

    p = add_command(
        sub,
        "resume",
        help="send a JSON payload to the hook holding TOKEN",
        description="Resume the live hook holding TOKEN with a JSON payload (a typed hook's "
        "payload is checked against the schema in its metadata first; nothing is sent when "
        "it does not fit).",
    )
    p.add_argument("token", help="the hook's token (create_hook(token=...))")
    p.add_argument("payload", metavar="JSON", help="the payload as JSON; - reads it from stdin")
    p.set_defaults(func=cmd_resume)

    p = add_command(
        sub,
        "stream",
        help="print a run's stream chunks (bytes as they are, objects as JSON lines)",
    )
    p.add_argument("run_id", metavar="RUN", help="the run's id (wrun_...)")
    p.add_argument(
        "--namespace",
        default=None,
        metavar="NS",
        help="the named stream (get_writable(namespace=NS)); none: the default stream",
    )
    p.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep printing new chunks until the stream closes or the run ends",
    )
    p.add_argument(
        "--start-index",
        type=int,
        default=0,
        help="the first chunk to print",
    )
    p.add_argument(
        "--poll",
        type=float,
        default=1.0,
        help="with --follow: the longest wait for a chunk before looking at the run again",
    )
    p.set_defaults(func=cmd_stream)
