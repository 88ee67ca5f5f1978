"""Launchers of the CNI plugins the lab emulates (``lab/plugins``), and their place in each
node's ``/opt/cni/bin``.

A launcher is a small executable on the sandbox's scratch tmpfs (which allows exec where a
state dir under /run may not) that starts this Python on the plugin's module; every node's
``/opt/cni/bin/<plugin>`` links to it. Settings the plugin needs from the lab (not from its
CNI config, which stays what users write) are set in its environment by the launcher.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping

from .nodes import Node


def write_launcher(bin_dir: str, plugin: str, env: Mapping[str, str] | None = None) -> str:
    """Write ``bin_dir/<plugin>``, which runs ``multihome.lab.plugins.<plugin>``'s ``main``
    with ``env`` added to its environment; returns its path."""
    os.makedirs(bin_dir, exist_ok=True)
    path = os.path.join(bin_dir, plugin)
    lines = ["import sys", f"sys.path[:0] = [{_package_parent()!r}]"]
    if env:
        lines += ["import os", f"os.environ.update({dict(env)!r})"]
    lines += [f"from multihome.lab.plugins.{plugin} import main", "sys.exit(main())"]
    python = sys.executable
    with open(path, "w") as fh:
        if len(python) < 120 and not any(c.isspace() for c in python):
            # no shell in between: one exec less a pod
            fh.write(f"#!{python} -IS\n" + "\n".join(lines) + "\n")
        else:  # a shebang line can't hold it
            code = "; ".join(lines)
            fh.write(f"#!/bin/sh\nexec {shlex.quote(python)} -I -S -c {shlex.quote(code)}\n")
    os.chmod(path, 0o755)
    return path


def link_plugin(launcher: str, where: Node) -> None:
    """Put the launcher's plugin in the node's ``/opt/cni/bin`` (a link, named as it)."""
    link = os.path.join(where.dir("/opt/cni/bin"), os.path.basename(launcher))
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(launcher, link)


def _package_parent() -> str:
    import multihome

    return os.path.dirname(os.path.dirname(os.path.abspath(multihome.__file__)))
