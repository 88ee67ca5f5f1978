"""pyroute2's modules without its package ``__init__`` (imported for that effect).

pyroute2's ``__init__`` imports its whole library to offer every class as a top-level
name: some 160 modules (conntrack, IPDB, NDB, nftables, WireGuard, ...; ~0.19 s of CPU
here, a third of ``up``'s start-up). The lab needs its rtnetlink message classes: 27 modules,
~0.04 s. Importing this module puts the ``pyroute2`` package in ``sys.modules`` as the
import system makes it from its spec, but without running its ``__init__``: ``import
pyroute2.netlink.rtnl.ifinfmsg`` then loads what that module imports and no more. A name
that is not a submodule, looked up on the package (``from pyroute2 import IPRoute``,
``pyroute2.__version__``), runs the real ``__init__`` first, once: the package behaves as
pyroute2 wrote it for whoever asks for more. Nothing changes if pyroute2 was imported
already.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

PACKAGE = "pyroute2"


class _Unrun(types.ModuleType):
    """The package before its ``__init__`` ran."""

    def __getattr__(self, name: str) -> Any:  # only names the module does not have yet
        if importlib.util.find_spec(f"{PACKAGE}.{name}") is not None:
            return importlib.import_module(f"{PACKAGE}.{name}")  # ``from pyroute2 import x``
        self.__class__ = types.ModuleType  # type: ignore[assignment]  # a plain module again
        spec = self.__spec__
        assert spec is not None and spec.loader is not None
        spec.loader.exec_module(self)
        return getattr(self, name)


def _install() -> None:
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None:  # not installed: the import that follows says so
        return
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _Unrun
    sys.modules[PACKAGE] = module


_install()
