"""Figures: each writes one valid PNG."""

from rockjax import plots
from helpers import assert_png


def test_overlay_curves_png(tmp_path):
  assert_png(plots.overlay_curves({'a': [(1, 50.0), (2, 60.0)], 'b': [(1, 40.0)]},
                                  str(tmp_path / 'o.png')))


def test_training_curves_with_the_best_epochs_record_missing(tmp_path):
  record = dict(train_loss=1.0, val_loss=1.1, train_accuracy=0.5, val_accuracy=0.4)
  records = [dict(record, epoch=3), dict(record, epoch=4)]
  for best_accuracy in (0.8, None):  # from the loop state, or not known at all
    assert_png(plots.training_curves(records, str(tmp_path / 'c.png'), best_epoch=1,
                                     best_accuracy=best_accuracy))
  assert_png(plots.training_curves([], str(tmp_path / 'e.png'), best_epoch=2))
