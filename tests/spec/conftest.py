"""Makes ``spec_helpers`` importable from the spec tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
