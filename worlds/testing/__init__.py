"""The world conformance suite: reusable pytest tests for any World.

Every ``test_*`` function here takes a ``world`` fixture (a fresh, empty world);
the cross-process tests also take ``world_factory`` (a ``WorldFactory``) and
``tmp_path``. A test module runs the whole suite with::

    from wfkit.worlds.testing import *  # noqa: F403  (pytest collects the imported tests)

next to a conftest providing the two fixtures; ``tests/worlds/conftest.py``
builds them from ``WORLD_FACTORIES``. Plugging in a world is one entry in that
registry: ``WorldFactory(name, make=lambda tmp_path: MyWorld(...),
spec=lambda tmp_path: "<create_world spec reopening it>")``.

Submodules: ``batches`` (several runs' writes in one call), ``lifecycle`` (runs, steps, hooks, waits), ``log`` (batches,
paging, exact data, the fold),
``races`` (threads racing one transition), ``flow`` (idempotency keys, named
queues' runs, schedules), ``queue_streams`` (queue and
streams, including processes racing for messages).
"""

from wfkit.worlds.testing import batches, flow, lifecycle, log, queue_streams, races
from wfkit.worlds.testing.batches import *  # noqa: F403
from wfkit.worlds.testing.factories import WORLD_FACTORIES, WorldFactory
from wfkit.worlds.testing.flow import *  # noqa: F403
from wfkit.worlds.testing.lifecycle import *  # noqa: F403
from wfkit.worlds.testing.log import *  # noqa: F403
from wfkit.worlds.testing.queue_streams import *  # noqa: F403
from wfkit.worlds.testing.races import *  # noqa: F403

__all__ = [
    "WORLD_FACTORIES",
    "WorldFactory",
    *sorted(n for n in dir(batches) if n.startswith("test_")),
    *sorted(n for n in dir(flow) if n.startswith("test_")),
    *sorted(n for n in dir(lifecycle) if n.startswith("test_")),
    *sorted(n for n in dir(log) if n.startswith("test_")),
    *sorted(n for n in dir(queue_streams) if n.startswith("test_")),
    *sorted(n for n in dir(races) if n.startswith("test_")),
]
