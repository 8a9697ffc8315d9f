"""`python -m specc` runs the command line."""

import sys

from specc.cli import main

sys.exit(main())
