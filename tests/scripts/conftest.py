"""The tests of scripts/ import the scripts as modules: put scripts/ on sys.path."""

import os
import sys

from helpers import ROOT

sys.path.insert(0, os.path.join(ROOT, 'scripts'))
