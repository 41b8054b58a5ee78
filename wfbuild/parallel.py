"""Running the transformer over many files: in-process for a few, a process pool for many.

Process start-up costs more than transforming a few dozen files, so the pool is
used only above `PARALLEL_THRESHOLD` files. Work is sent in batches (one pickled
round trip per batch, not per file) and the ``workflow_modules`` set is handed to
each worker once, by the pool initializer.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from importlib.util import decode_source
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from wfkit.transformer.result import TransformResult

PARALLEL_THRESHOLD = 50
PROGRESS_DELAY = 1.0

TransformFn = Callable[..., "TransformResult"]
"""``transform_module(source, *, path, module, workflow_modules) -> TransformResult``."""


@dataclass(frozen=True)
class TransformJob:
    """One file to transform: root-relative path, dotted module name and raw bytes."""

    path: str
    module: str
    data: bytes


def default_transform() -> TransformFn:
    """The real transformer function (imported lazily: libcst is heavy)."""
    from wfkit.transformer import transform_module

    return transform_module


def transform_one(
    job: TransformJob, workflow_modules: frozenset[str], transform: TransformFn
) -> TransformResult:
    """Transform one file; undecodable sources and transformer crashes become diagnostics."""
    try:
        source = decode_source(job.data)
    except (SyntaxError, UnicodeDecodeError) as exc:
        return _failed(job, "WFB001", f"cannot decode source: {exc}")
    try:
        return transform(
            source, path=job.path, module=job.module, workflow_modules=workflow_modules
        )
    except Exception as exc:  # a transformer bug must not hide the other files' diagnostics
        return _failed(job, "WFB002", f"internal transformer error: {type(exc).__name__}: {exc}")


def _failed(job: TransformJob, code: str, message: str) -> TransformResult:
    from wfkit.transformer.result import Diagnostic, TransformResult

    diagnostic = Diagnostic(path=job.path, line=1, column=1, code=code, message=message)
    return TransformResult(
        path=job.path, module=job.module, workflow=None, step=None, client=None,
        diagnostics=(diagnostic,),
    )  # fmt: skip


_worker_modules: frozenset[str] = frozenset()
_worker_transform: TransformFn | None = None


def _init_worker(workflow_modules: frozenset[str], transform: TransformFn | None) -> None:
    global _worker_modules, _worker_transform
    _worker_modules = workflow_modules
    _worker_transform = transform or default_transform()


def _transform_batch(batch: list[TransformJob]) -> list[TransformResult]:
    assert _worker_transform is not None
    return [transform_one(job, _worker_modules, _worker_transform) for job in batch]


class Progress:
    """``[n/total]`` on stderr, shown only once the work has taken longer than a moment.

    On a terminal it is one line rewritten in place; otherwise (CI logs) a line at
    each quarter, so logs stay short.
    """

    def __init__(self, total: int, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled and total > 0
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.perf_counter()
        self.tty = self.stream.isatty()
        self.shown = False
        self._next_quarter = 1

    def advance(self, count: int) -> None:
        """Record ``count`` more files done and redraw if due."""
        self.done += count
        if not self.enabled or time.perf_counter() - self.started < PROGRESS_DELAY:
            return
        if self.tty:
            self.stream.write(f"\r[{self.done}/{self.total}] transforming")
            self.stream.flush()
            self.shown = True
            return
        while self._next_quarter <= 4 and self.done * 4 >= self.total * self._next_quarter:
            self._next_quarter += 1
            if self.done < self.total or self.shown:
                self.stream.write(f"[{self.done}/{self.total}] transforming\n")
                self.shown = True

    def close(self) -> None:
        """End the progress line (terminal mode)."""
        if self.shown and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _batches(jobs: Sequence[TransformJob], workers: int) -> list[list[TransformJob]]:
    size = max(1, min(32, len(jobs) // (workers * 4)))
    return [list(jobs[i : i + size]) for i in range(0, len(jobs), size)]


def transform_all(
    jobs: Sequence[TransformJob],
    workflow_modules: frozenset[str],
    *,
    workers: int | None = None,
    progress: bool = False,
    transform: TransformFn | None = None,
) -> dict[str, TransformResult]:
    """Transform ``jobs`` and return the results keyed by path.

    Args:
        jobs: the files to transform.
        workflow_modules: dotted names of every module of the build with directives
            or serializable classes (passed to each transform call).
        workers: process count; None means ``os.cpu_count()``, 1 means in-process.
        progress: show progress on stderr when the work takes more than a moment.
        transform: the transform function (tests inject fakes); defaults to the transformer's.
    """
    workers = workers or os.cpu_count() or 1
    bar = Progress(len(jobs), enabled=progress)
    results: dict[str, TransformResult] = {}
    try:
        if len(jobs) <= PARALLEL_THRESHOLD or workers == 1:
            fn = transform or default_transform()
            for job in jobs:
                results[job.path] = transform_one(job, workflow_modules, fn)
                bar.advance(1)
            return results
        batches = _batches(jobs, workers)
        # Not fork: the caller may have threads (watch mode, an app calling wfkit.run).
        method = "forkserver" if sys.platform != "win32" else "spawn"
        with ProcessPoolExecutor(
            max_workers=min(workers, len(batches)),
            mp_context=multiprocessing.get_context(method),
            initializer=_init_worker,
            initargs=(workflow_modules, transform),
        ) as pool:
            futures = [pool.submit(_transform_batch, batch) for batch in batches]
            if transform is None:
                # a process that builds once often builds again (watch, wfkit.run in a
                # notebook), and a small rebuild runs here: load the transformer while the
                # workers do the work, so that rebuild does not wait for libcst
                default_transform()
            for future in as_completed(futures):
                batch_results = future.result()
                for result in batch_results:
                    results[result.path] = result
                bar.advance(len(batch_results))
        return results
    finally:
        bar.close()
