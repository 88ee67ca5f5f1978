"""forkpool.fork_map: results in order from forked workers, the first error raised with the
other workers stopped, a worker that dies reported, no descriptor or process left."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from multihome.cni import spawn
from multihome.lab import forkpool


def _square_with_pid(x: int) -> tuple[int, int]:
    time.sleep(0.002)
    return x * x, os.getpid()


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_results_in_item_order_from_several_workers() -> None:
    before = _fds()
    seen: list[int] = []
    results = forkpool.fork_map(
        _square_with_pid, list(range(40)), 4, on_result=lambda i, _: seen.append(i)
    )
    assert [r for r, _ in results] == [x * x for x in range(40)]
    workers = {pid for _, pid in results}
    assert os.getpid() not in workers and 2 <= len(workers) <= 4
    assert sorted(seen) == list(range(40))
    assert _fds() == before


def test_more_items_than_a_pipe_holds() -> None:
    assert forkpool.fork_map(abs, list(range(-30000, 0)), 3)[:3] == [30000, 29999, 29998]


def test_one_worker_runs_in_process() -> None:
    (result,) = forkpool.fork_map(_square_with_pid, [3], 4)
    assert result == (9, os.getpid())


def _fail_on_seven(x: int) -> int:
    if x == 7:
        raise ValueError(f"bad item {x}")
    time.sleep(0.01)
    return x


def test_first_error_is_raised_and_workers_are_gone() -> None:
    before = _fds()
    with pytest.raises(ValueError, match="bad item 7"):
        forkpool.fork_map(_fail_on_seven, list(range(100)), 3)
    assert _fds() == before
    # plugins that tests before this one ran leave their zombies to be reaped at the next
    # plugin's start (cni/spawn.py): reap them, so that only workers could be left
    spawn.reap_ended(everything=True)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # every worker was reaped


def _die_on_five(x: int) -> int:
    if x == 5:
        os._exit(3)
    return x


def test_a_worker_that_dies_is_reported() -> None:
    with pytest.raises(forkpool.WorkerDied, match="workers ended after"):
        forkpool.fork_map(_die_on_five, list(range(10)), 2)


class Unpicklable(Exception):
    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("no pickling")


def _raise_unpicklable(_: int) -> int:
    raise Unpicklable("deep inside")


def test_an_error_that_does_not_pickle_still_arrives() -> None:
    with pytest.raises(RuntimeError, match="Unpicklable: deep inside"):
        forkpool.fork_map(_raise_unpicklable, [1, 2], 2)


def test_an_error_in_on_result_stops_the_pool() -> None:
    before = _fds()

    def explode(index: int, _: object) -> None:
        raise KeyError(index)

    with pytest.raises(KeyError):
        forkpool.fork_map(_square_with_pid, list(range(20)), 3, on_result=explode)
    assert _fds() == before
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def _leave_a_grandchild(item: tuple[int, str]) -> int:
    x, pidfile = item
    pid = os.fork()
    if pid == 0:  # holds the worker's result pipe open for a while
        time.sleep(30)
        os._exit(0)
    with open(pidfile, "a") as fh:
        fh.write(f"{pid}\n")
    return x


def test_results_do_not_wait_for_a_grandchild_holding_the_pipe(tmp_path: Path) -> None:
    pidfile = str(tmp_path / "grandchildren")
    try:
        assert forkpool.fork_map(_leave_a_grandchild, [(1, pidfile), (2, pidfile)], 2) == [1, 2]
        pids = [int(line) for line in Path(pidfile).read_text().split()]
        assert len(pids) == 2
        for pid in pids:  # still there: fork_map returned without waiting for them
            os.kill(pid, 0)
    finally:
        for line in Path(pidfile).read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line), signal.SIGKILL)
