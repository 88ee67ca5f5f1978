"""The ``multihome`` command (and ``python -m multihome``): the console script's entry.

It imports nothing before it can catch Ctrl-C, so an interrupt at any moment, start-up
(importing the libraries and layers) included, ends the command silently with exit code
130, as a shell reports a command that SIGINT stopped.
"""

import signal
import sys

EXIT_INTERRUPTED = 130


def main() -> None:
    try:
        from multihome.cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        # a second Ctrl-C while the interpreter shuts down must not print a traceback either
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
