"""Conformance tests of concurrent writers: threads racing the same transition."""

from __future__ import annotations

import threading
from collections.abc import Callable

from wfkit.worlds.base import EntityConflictError, EventResult, World
from wfkit.worlds.testing.lifecycle import assert_consistent, ev, new_run

# --- concurrency -----------------------------------------------------------


def _race(count: int, action: Callable[[int], object]) -> list[object]:
    """Run ``action(i)`` on ``count`` threads released together; returns results or errors."""
    barrier = threading.Barrier(count)
    outcomes: list[object] = [None] * count

    def runner(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = action(index)
        except Exception as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_threads_racing_one_creation_event(world: World) -> None:
    run_id = new_run(world)
    outcomes = _race(
        8,
        lambda i: world.events.create(run_id, ev("step_created", "step_x", step_name=f"s{i}")),
    )
    winners = [o for o in outcomes if isinstance(o, EventResult)]
    assert len(winners) == 1
    assert all(isinstance(o, EntityConflictError) for o in outcomes if o not in winners)
    assert [e.event_type for e in world.events.list(run_id)].count("step_created") == 1
    assert_consistent(world, run_id)


def test_threads_racing_terminal_step_events(world: World) -> None:
    run_id = new_run(world)
    world.events.create_batch(
        run_id, [ev("step_created", "step_x", step_name="s"), ev("step_started", "step_x")]
    )
    outcomes = _race(
        8, lambda i: world.events.create(run_id, ev("step_completed", "step_x", result=i))
    )
    winners = [o for o in outcomes if isinstance(o, EventResult)]
    assert len(winners) == 1
    assert world.steps.get(run_id, "step_x").output == winners[0].event.data["result"]
    assert_consistent(world, run_id)


def test_threads_racing_one_hook_token(world: World) -> None:
    run_ids = [new_run(world) for _ in range(6)]
    outcomes = _race(
        6,
        lambda i: world.events.create(run_ids[i], ev("hook_created", f"hook_{i}", token="race")),
    )
    assert all(isinstance(o, EventResult) for o in outcomes)
    types = sorted(o.event.event_type for o in outcomes if isinstance(o, EventResult))
    assert types == ["hook_conflict"] * 5 + ["hook_created"]
    holder = world.hooks.get_by_token("race")
    assert holder.status == "active"
    for run_id in run_ids:
        assert_consistent(world, run_id)


def test_threads_writing_their_own_runs(world: World) -> None:
    run_ids = [new_run(world) for _ in range(6)]

    def drive(index: int) -> int:
        run_id = run_ids[index]
        for step in range(40):
            world.events.create_batch(
                run_id,
                [
                    ev("step_created", f"step_{step}", step_name="s", input=step),
                    ev("step_started", f"step_{step}"),
                    ev("step_completed", f"step_{step}", result=step * index),
                ],
            )
            world.streams.append(run_id, "out", str(step).encode())
            world.queue.enqueue("q_", {"run_id": run_id, "step": step})
        world.events.create(run_id, ev("run_completed", output=index))
        return index

    outcomes = _race(len(run_ids), drive)
    assert outcomes == list(range(len(run_ids)))
    for index, run_id in enumerate(run_ids):
        assert world.runs.get(run_id).output == index
        assert len(world.events.list(run_id)) == 2 + 40 * 3 + 1
        assert [s.output for s in world.steps.list(run_id)] == [n * index for n in range(40)]
        assert len(world.streams.read(run_id, "out").chunks) == 40
        assert_consistent(world, run_id)
    assert len(world.queue.receive(["q_"], lease_seconds=30, max_messages=1000)) == 240
