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


def test_small_multiples_draw_one_panel_per_run(tmp_path):
  curves = {f'run {i}': [(1, 40.0 + i), (2, 50.0 + i), (3, 55.0 + i)] for i in range(9)}
  curves['failed'] = []
  assert_png(plots.curves_grid(curves, str(tmp_path / 'grid.png')))
  from PIL import Image
  with Image.open(tmp_path / 'grid.png') as im:
    width, height = im.size
  assert height > width / 4 * 2  # three rows of four panels, not one crowded plot
  import pytest
  with pytest.raises(ValueError, match='no curve'):
    plots.curves_grid({'a': []}, str(tmp_path / 'none.png'))


def test_panel_titles_carry_the_callers_note_or_where_the_curve_ends():
  curves = {'early stopped': [(1, 40.0), (2, 47.94)], 'plain': [(1, 40.0), (40, 52.61)],
            'failed': []}
  titles = plots.grid_titles(curves, notes={'early stopped': 'final epoch 46.9 +- 4.5'})
  assert titles == {'early stopped': 'early stopped\nfinal epoch 46.9 +- 4.5',
                    'plain': 'plain\nepoch 40: 52.6'}  # a failed run has no panel


def test_panel_titles_wrap_long_run_names_whole():
  name = '32 px recipe, reduce-on-plateau instead of warmup + cosine'
  title = plots.panel_title(name, width=40)
  assert title.replace('\n', ' ') == name  # every word kept, over two lines
  assert max(len(line) for line in title.split('\n')) <= 40 and title.count('\n') == 1
  long = plots.panel_title('word ' * 60, width=20, max_lines=3)
  assert long.count('\n') == 2 and long.endswith('...') and len(long.split('\n')[-1]) <= 20
  assert plots.panel_title('short') == 'short'
