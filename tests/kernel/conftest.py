"""The kernel VM's tests boot a VM (minutes, not seconds): only `make test-kernel` runs them,
by setting MULTIHOME_KERNEL_VM=1; `make test` does not collect them."""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("MULTIHOME_KERNEL_VM") == "1" else ["test_*.py"]
