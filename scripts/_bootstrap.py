"""Imported first by every script in scripts/: puts the repository root on sys.path, so that
`python scripts/<name>.py` finds the rockjax package without installing it."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
