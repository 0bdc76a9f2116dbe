"""The tests' tiny config as a config file, for command-line (subprocess) tests."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import tiny_config  # noqa: E402


def get_config():
  return tiny_config()
