"""Workflows behind the end-to-end scenarios of SCENARIOS.md."""
