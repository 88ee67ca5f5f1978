"""Run a function over many items in forked worker processes: the lab's concurrency.

Inside the sandbox a process can't start threads (it joined the lab's PID namespace with
setns; only its children live in it), and attaching a pod is mostly waiting on plugin
processes and the wire, so work is spread over forked workers instead. Workers take the
next item from a shared pipe (each read of one index is atomic), so a slow item (a DHCP
attachment) does not hold up the rest; results come back pickled, in item order.

An exception in ``fn`` stops the pool: the other workers are killed and the first error is
raised in the caller (who rolls back from the journal). Callers that want to go on past
failures catch them inside ``fn``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import selectors
import signal
import struct
import traceback
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from . import ns

T = TypeVar("T")
R = TypeVar("R")

_INDEX = struct.Struct("=I")
_LENGTH = struct.Struct("=Q")
_F_SETPIPE_SZ = 1031


class WorkerDied(RuntimeError):
    """A worker ended without reporting (killed, or it crashed)."""


def dump_outcome(status: str, value: Any) -> bytes:
    """``(status, value)`` pickled; an exception that doesn't pickle becomes a RuntimeError
    with its type, message and traceback."""
    try:
        return pickle.dumps((status, value))
    except Exception:
        if not isinstance(value, BaseException):
            raise
        text = "".join(traceback.format_exception(value))
        return pickle.dumps((status, RuntimeError(f"{type(value).__name__}: {value}\n{text}")))


def fork_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    *,
    on_result: Callable[[int, R], None] | None = None,
) -> list[R]:
    """``[fn(item) for item in items]``, computed by up to ``workers`` forked processes.
    ``on_result(index, result)`` is called in the caller as each result arrives."""
    count = len(items)
    workers = max(1, min(workers, count))
    if workers == 1:
        results = []
        for index, item in enumerate(items):
            results.append(fn(item))
            if on_result is not None:
                on_result(index, results[-1])
        return results
    queue_r, queue_w = os.pipe()
    with contextlib.suppress(OSError):  # a larger pipe holds more indexes; else write in turns
        fcntl.fcntl(queue_w, _F_SETPIPE_SZ, min(1 << 20, max(4096, count * _INDEX.size)))
    pids: dict[int, int] = {}  # result fd -> pid
    try:
        for _ in range(workers):
            out_r, out_w = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the worker
                os.close(out_r)
                os.close(queue_w)
                _work(fn, items, queue_r, out_w)
            os.close(out_w)
            pids[out_r] = pid
        os.close(queue_r)
        queue_r = -1
        feed, queue_w = queue_w, -1  # _collect owns it from here and closes it
        return _collect(items, feed, pids, on_result)
    finally:
        for fd in (queue_r, queue_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        for fd, pid in pids.items():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            with contextlib.suppress(OSError):
                os.close(fd)


def _work(fn: Callable[[T], R], items: Sequence[T], queue: int, out: int) -> None:
    """The worker's loop: take an index, send ``(index, outcome)``; exit at the queue's end
    or after an error."""
    code = 0
    try:
        ns.die_with_parent()
        while len(raw := os.read(queue, _INDEX.size)) == _INDEX.size:
            (index,) = _INDEX.unpack(raw)
            try:
                payload = dump_outcome("ok", (index, fn(items[index])))
            except BaseException as exc:
                payload = dump_outcome("error", exc)
                code = 1
            _send(out, payload)
            if code:
                break
    finally:
        os._exit(code)


def _send(fd: int, payload: bytes) -> None:
    data = _LENGTH.pack(len(payload)) + payload
    while data:
        data = data[os.write(fd, data) :]


def _collect(
    items: Sequence[Any],
    queue_w: int,
    pids: dict[int, int],
    on_result: Callable[[int, Any], None] | None,
) -> list[Any]:
    results: list[Any] = [None] * len(items)
    done = 0
    pending = b"".join(_INDEX.pack(i) for i in range(len(items)))
    buffers = {fd: b"" for fd in pids}
    fed = False  # the queue's write end is ours to close (once) from here
    try:
        with selectors.DefaultSelector() as sel:
            for fd in pids:
                sel.register(fd, selectors.EVENT_READ)
            os.set_blocking(queue_w, False)
            sel.register(queue_w, selectors.EVENT_WRITE)
            open_fds = set(pids)
            # done when every result is in, not at every worker's end of file: a grandchild a
            # worker left running (a daemon it started) may hold the pipe open
            while open_fds and done < len(items):
                for key, _ in sel.select():
                    fd = int(key.fd)
                    if fd == queue_w:
                        try:
                            written = os.write(queue_w, pending)
                        except BlockingIOError:
                            continue
                        pending = pending[written:]
                        if not pending:  # the workers see the queue's end
                            sel.unregister(queue_w)
                            os.close(queue_w)
                            fed = True
                        continue
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        sel.unregister(fd)
                        open_fds.discard(fd)
                        if buffers[fd]:
                            raise WorkerDied("a worker ended in the middle of a result")
                        continue
                    buffers[fd] += chunk
                    while len(buffers[fd]) >= _LENGTH.size:
                        (size,) = _LENGTH.unpack_from(buffers[fd])
                        if len(buffers[fd]) < _LENGTH.size + size:
                            break
                        body = buffers[fd][_LENGTH.size : _LENGTH.size + size]
                        buffers[fd] = buffers[fd][_LENGTH.size + size :]
                        status, value = pickle.loads(body)
                        if status != "ok":
                            raise value
                        index, result = value
                        results[index] = result
                        done += 1
                        if on_result is not None:
                            on_result(index, result)
    finally:
        if not fed:
            os.close(queue_w)
    if done != len(items):
        raise WorkerDied(f"workers ended after {done} of {len(items)} items")
    return results


def attach_workers() -> int:
    """How many pods are attached at once: ``$MULTIHOME_ATTACH_WORKERS``, else four per CPU
    (an attachment mostly waits on plugin processes and the wire: a DHCP pod takes ~225 ms
    of which ~100 ms are CPU, so two per CPU left the CPUs idle part of the time)."""
    value = os.environ.get("MULTIHOME_ATTACH_WORKERS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return 4 * (os.cpu_count() or 1)
