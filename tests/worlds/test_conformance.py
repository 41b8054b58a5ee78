"""The world conformance suite (``wfkit.worlds.testing``) on every registered world."""

from wfkit.worlds.testing import *  # noqa: F403
