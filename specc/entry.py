"""The `specc` console script: quiet on Ctrl-C from its first instant, then the command line.

Importing the CLI takes a noticeable moment (argparse, the diagnostics); a Ctrl-C in that window
would otherwise print Python's traceback. This module imports nothing but the standard library.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

EXIT_INTERRUPTED = 130  # specc.exitcodes.EXIT_INTERRUPTED, without importing it first


def _interrupted(signum: int, frame: FrameType | None) -> None:
    """SIGINT while the CLI imports: leave at once, silently, with the interrupted status."""
    raise SystemExit(EXIT_INTERRUPTED)


def main() -> int:
    """Install the quiet handler, import the CLI, restore the previous handler, run it."""
    previous = signal.signal(signal.SIGINT, _interrupted)  # an ignored SIGINT stays ignored
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    from specc.cli import main as cli_main

    signal.signal(signal.SIGINT, previous)
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
