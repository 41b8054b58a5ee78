"""Default hook tokens: random (never derived from the run), recorded, and read back on replay.

Before 0.2, a default token came from ``random.Random(f"wfkit-correlation-ids:{run_id}")``,
so anyone who saw a run ID could compute its webhook URLs. ``old_derived_token`` is that
derivation, kept here to prove it no longer yields the token, and that logs recorded with
it still replay (the recorded token wins).
"""

from __future__ import annotations

import base64
import random
import re
from typing import Any

from replay_log import RUN_ID, Log, make_run

from wfkit.runtime.api.workflow import create_hook
from wfkit.runtime.replay.session import Completed, ReplaySession, Suspended, replay
from wfkit.runtime.serialization import serialize

URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def old_derived_token(run_id: str) -> str:
    """The first default token wfkit 0.1.0 gave a run (``CorrelationIds.token()``)."""
    rng = random.Random(f"wfkit-correlation-ids:{run_id}")
    rng.getrandbits(79)  # the id stream's start, drawn first
    return base64.urlsafe_b64encode(rng.randbytes(18)).decode("ascii")


async def token_at_the_call() -> Any:
    hook = create_hook()
    token = hook.token  # read before the log's hook_created is delivered
    payload = await hook
    return [token, hook.token, payload]


def frontier_token(run_id: str) -> str:
    """The token a run's first default hook gets where the log ends (the live path)."""
    outcome = replay(token_at_the_call, make_run(run_id), Log(run_id).events, args=(), kwargs={})
    assert isinstance(outcome, Suspended), outcome
    (hook,) = outcome.hooks
    return hook.token


def test_a_default_token_is_random_url_safe_and_144_bits() -> None:
    tokens = [frontier_token(RUN_ID) for _ in range(20)]
    tokens += [frontier_token(f"wrun_01TESTRUN{n:016d}") for n in range(20)]
    assert len(set(tokens)) == len(tokens)  # not even one run's replays share one
    for token in tokens:
        assert URL_SAFE.match(token), token
        assert len(base64.urlsafe_b64decode(token)) == 18


def test_the_run_id_no_longer_gives_the_token() -> None:
    for n in range(20):
        run_id = f"wrun_01TESTRUN{n:016d}"
        assert frontier_token(run_id) != old_derived_token(run_id)


def test_a_log_recorded_by_0_1_replays_with_its_recorded_token() -> None:
    """0.1.0 recorded the derived token: replay hands it to the workflow at the call."""
    log = Log()
    pending = replay(token_at_the_call, make_run(), log.events, args=(), kwargs={})
    assert isinstance(pending, Suspended)
    correlation_id = pending.hooks[0].correlation_id
    recorded = old_derived_token(RUN_ID)
    log.add("hook_created", correlation_id, {"token": recorded, "metadata": None})
    log.add("hook_received", correlation_id, {"payload": serialize("p")})
    outcome = replay(token_at_the_call, make_run(), log.events, args=(), kwargs={})
    assert outcome == Completed([recorded, recorded, "p"])


def test_a_replay_sees_the_recorded_token_from_the_call_on() -> None:
    """A token recorded by another worker (any random one) is the one user code sees."""
    log = Log()
    pending = replay(token_at_the_call, make_run(), log.events, args=(), kwargs={})
    assert isinstance(pending, Suspended)
    correlation_id = pending.hooks[0].correlation_id
    log.add("hook_created", correlation_id, {"token": "recorded-elsewhere", "metadata": None})
    log.add("hook_received", correlation_id, {"payload": serialize("p")})
    outcome = replay(token_at_the_call, make_run(), log.events, args=(), kwargs={})
    assert outcome == Completed(["recorded-elsewhere", "recorded-elsewhere", "p"])


def test_a_session_knows_when_it_holds_a_token_not_in_the_log() -> None:
    async def chosen() -> Any:
        return await create_hook(token="chosen")

    log = Log()
    session = ReplaySession(token_at_the_call, make_run(), args=(), kwargs={})
    pending = session.feed(log.events)
    assert isinstance(pending, Suspended) and session.holds_unwritten_tokens
    written = log.add("hook_created", pending.hooks[0].correlation_id, {"token": "t"})
    session.feed([written])
    assert not session.holds_unwritten_tokens
    session.close()
    other = ReplaySession(chosen, make_run(), args=(), kwargs={})
    assert isinstance(other.feed(Log().events), Suspended)
    assert not other.holds_unwritten_tokens
    other.close()
