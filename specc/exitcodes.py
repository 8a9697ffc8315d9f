"""specc's exit statuses (contract §3), in one place: the CLI and every verb return these;
and UsageError, which any stage may raise for exit status 2.

The generated `train.py` never imports specc, so it spells 2, 3 and 130 itself; `specc train`
relays them unchanged.
"""

from __future__ import annotations

EXIT_OK = 0
"""Success; warnings allowed."""
EXIT_ERRORS = 1
"""Spec errors (with `check --strict`, warnings too); `compile --check`: stale files; `export`:
the export or its verification failed; `predict`: ONNX Runtime failed on a batch."""
EXIT_USAGE = 2
"""A usage error, an unreadable or unwritable file, bad data, missing training extras."""
EXIT_NON_FINITE = 3
"""`train`: the loss became NaN or infinite (the last good checkpoint is kept)."""
EXIT_INTERRUPTED = 130
"""Interrupted (SIGINT, SIGTERM, SIGHUP); a `train` run continues with `--resume`."""


class Interrupted(KeyboardInterrupt):
    """What specc's handlers of SIGINT, SIGTERM and SIGHUP raise: caught by every `except
    KeyboardInterrupt`, but of its own class, because CPython remembers an exact KeyboardInterrupt
    that escapes an exec() of source text (dataclasses build their methods so, while modules
    import) and, even once it is caught, ends the interpreter by SIGINT (status -2) instead of
    the exit status the CLI returns (130)."""


class UsageError(Exception):
    """A problem with the command line, an unreadable file or the installation (no formatter):
    the CLI prints it as one line and exits with EXIT_USAGE."""
