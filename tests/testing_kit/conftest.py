"""The testing kit's tests. ``project/`` is a user's project with its own test suite,
run as a user would run it (a pytest subprocess in that directory); it is not part of
this repo's suite."""

collect_ignore = ["project"]
