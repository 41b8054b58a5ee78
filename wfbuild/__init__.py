"""wfbuild."""
