"""``python -m wfbuild``."""

import sys

from wfbuild.cli import main

# Guarded: worker processes started by forkserver/spawn import the main module.
if __name__ == "__main__":
    sys.exit(main())
