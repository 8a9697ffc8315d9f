"""`python -m specc` runs the command line."""

import sys

from specc.entry import main

sys.exit(main())
