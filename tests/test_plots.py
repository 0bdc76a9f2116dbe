"""Figures: each writes one valid PNG."""

from rockjax import plots
from helpers import assert_png


def test_overlay_curves_png(tmp_path):
  assert_png(plots.overlay_curves({'a': [(1, 50.0), (2, 60.0)], 'b': [(1, 40.0)]},
                                  str(tmp_path / 'o.png')))
