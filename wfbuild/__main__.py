"""``python -m wfbuild``."""

import sys

from wfbuild.cli import main

sys.exit(main())
