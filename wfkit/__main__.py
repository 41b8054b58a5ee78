"""python -m wfkit."""

from wfkit.cli import main

raise SystemExit(main())
