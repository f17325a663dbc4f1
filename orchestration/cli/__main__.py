"""`python -m orchestration.cli ...`: the same as `segments ...`."""

import sys

from orchestration.cli import main

sys.exit(main())
