"""Clean shutdown of long-running CLI processes (scheduler, dispatcher) on SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable


class StopRequested(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT to end a long-running process's wait. A
    BaseException, like KeyboardInterrupt, so that no ``except Exception`` on the way swallows it."""


def _stop_requested(signum, frame):
    # Raising (as Python does for Ctrl-C) is safe from a handler; setting an Event is not.
    raise StopRequested(signal.Signals(signum).name)


def run_until_signal(run: Callable[[], None], *, log: logging.Logger, what: str) -> None:
    """Call ``run`` with SIGTERM and SIGINT turned into :class:`StopRequested`, which ends it
    (``run`` is expected to shut down cleanly in its ``finally``); the old handlers come back."""
    previous = {sig: signal.signal(sig, _stop_requested) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        run()
    except StopRequested as stop:
        log.info("%s shut down on a signal", what, extra={"signal": str(stop)})
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
