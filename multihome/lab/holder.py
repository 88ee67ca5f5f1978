"""The sandbox's supervisor: PID 1 of the lab's PID namespace, holding its namespaces.

Run as ``python -I -S holder.py multihome-sandbox LAB TOKEN READY_FD`` by ``sandbox.create``
(its command line names the lab, so ``ps`` shows what it is and a crashed ``up`` can be found
by TOKEN). It says it is ready on READY_FD, then reaps orphans until SIGTERM. When it exits,
for any reason, the kernel kills every process of the lab's PID namespace, and the lab's
user, mount and network namespaces (with their bridges, veths and node namespaces) go when
their last user does. Standard library only: it starts in about 10 ms.
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> int:
    ready_fd = int(argv[4])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    waited = {signal.SIGCHLD, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    os.write(ready_fd, b"r")
    os.close(ready_fd)
    while True:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        if signal.sigwait(waited) == signal.SIGTERM:
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
