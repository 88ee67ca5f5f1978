"""The package's errors survive pickling (a fork worker of the lab sends them back to its
parent): their keyword-only fields and message come back as they were."""

from __future__ import annotations

import pickle

from multihome.multus.errors import AttachError, DelegateError, DetachError, SelectionError


def test_errors_round_trip_through_pickle() -> None:
    errors = [
        DelegateError("pod a/b: no NAD", pod="a/b", network="a/n"),
        AttachError("a/b:n: failed", pod="a/b", network="n", cause=ValueError("plugin")),
        DetachError("a/b: 1 DEL failed", pod="a/b", errors=[("n", OSError("gone"))]),
        SelectionError("bad", element=2, field="ips", value=["x"]),
    ]
    for error in errors:
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)
        assert {k: repr(v) for k, v in vars(back).items()} == {
            k: repr(v) for k, v in vars(error).items()
        }
