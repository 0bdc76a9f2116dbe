"""--mode=export: the SavedModel gives what the JAX predictor gives, at any batch size."""

import numpy as np

from rockjax.serving import export, predictor as inference


def test_export_round_trip_matches_jax(run, tmp_path):
  _, workdir, _ = run
  out = export.export_saved_model(workdir, str(tmp_path / 'export'))
  serve, meta = export.load_saved_model(out)
  predictor = inference.load_predictor(workdir)
  assert meta['class_names'] == predictor.class_names and meta['image_size'] == 16
  images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
  expected = predictor.probabilities(images)
  for batch in (images, images[:1]):  # any batch size
    got = serve(batch)
    np.testing.assert_allclose(got, expected[:len(batch)], atol=1e-5)
