"""wfkit."""
