"""The ``multihome`` command (and ``python -m multihome``): the console script's entry.

It imports nothing before it can catch Ctrl-C, so an interrupt at any moment, start-up
(importing the libraries and layers) included, ends the command silently with exit code
130, as a shell reports a command that SIGINT stopped.

A command that is done leaves without the interpreter's teardown (freeing each of the
thousand modules and their objects one by one: ~0.1 s after ``up``), once its output is
flushed and the ``atexit`` handlers ran: the kernel frees a process's memory at once.
Only when no other thread runs, which the teardown would wait for, and no profiler or
tracer watches (``python -m cProfile`` writes its report after the command returns).
"""

import gc
import os
import signal
import sys

EXIT_INTERRUPTED = 130


def main() -> None:
    try:
        # the start-up allocates some 10^6 objects and frees few: the cyclic collector's
        # passes over them cost ~15% of it; the objects made so far are then frozen out of
        # its later passes (and out of the pages forked children would copy)
        gc.disable()
        from multihome.cli import main as cli_main

        gc.enable()
        gc.freeze()

        try:
            cli_main()
        except SystemExit as done:
            _leave(done)
        _leave(SystemExit(0))
    except KeyboardInterrupt:
        # a second Ctrl-C while the interpreter shuts down must not print a traceback either
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.exit(EXIT_INTERRUPTED)


def _leave(done: SystemExit) -> None:
    """Exit with ``done``'s code at once, or raise it (a code that is a message, other
    threads alive, a profiler, output that can't be flushed: the interpreter's own exit
    handles it)."""
    import atexit
    import threading

    code = 0 if done.code is None else done.code
    watched = sys.getprofile() is not None or sys.gettrace() is not None  # cProfile, ...
    if not isinstance(code, int) or threading.active_count() > 1 or watched:
        raise done
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        raise done from None
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    main()
