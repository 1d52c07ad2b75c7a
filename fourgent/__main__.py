"""`python -m fourgent`: see fourgent.cli."""

import sys

from .cli import main

sys.exit(main())
