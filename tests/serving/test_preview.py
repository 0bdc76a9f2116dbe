"""--mode=preview: a PNG of original and augmented training images."""

from PIL import Image

from rockjax.serving import preview
from helpers import assert_png, tiny_config


def test_preview_grid_is_written(tmp_path):
  config = tiny_config(augment__preset='crop')
  path = preview.write_augmentation_preview(config, str(tmp_path / 'p.png'), per_class=1,
                                            versions=3)
  assert_png(path)
  with Image.open(path) as img:
    assert img.size[0] > img.size[1] > 100  # 4 rows of 4 cells
