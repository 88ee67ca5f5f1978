"""The apply tests use the verify tests' kit (variants, lab_up) and the lab tests' (labkit)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "lab"))
sys.path.insert(0, str(Path(__file__).parent.parent / "verify"))
