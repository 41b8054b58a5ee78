"""python -m wfkit.cli (as before the package split; ``python -m wfkit`` is the usual way)."""

from wfkit.cli import main

raise SystemExit(main())
