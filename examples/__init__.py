"""Example wfkit apps: the demo, and the end-to-end scenario workflows."""
