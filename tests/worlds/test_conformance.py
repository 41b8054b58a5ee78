"""The world conformance suite (``worlds.testing``) on every registered world."""

from worlds.testing import *  # noqa: F403
