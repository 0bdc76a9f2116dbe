"""--mode=export: the SavedModel gives what the JAX predictor gives, at any batch size."""

import shutil
import socket
import subprocess

import numpy as np

from rockjax.serving import export, predictor as inference


def test_export_round_trip_matches_jax(run, tmp_path):
  """Exported from a copy of the run that is still training (its lock held by a live process):
  model.json says so, and which checkpoint it holds."""
  _, workdir, _ = run
  copy = tmp_path / 'run'
  shutil.copytree(workdir, copy)
  trainer = subprocess.Popen(['sleep', '120'])
  try:
    (copy / '.lock').write_text(f'pid {trainer.pid} on host {socket.gethostname()}, since now')
    out = export.export_saved_model(str(copy), str(tmp_path / 'export'))
  finally:
    trainer.kill()
  serve, meta = export.load_saved_model(out)
  predictor = inference.load_predictor(workdir)
  assert meta['class_names'] == predictor.class_names and meta['image_size'] == 16
  assert meta['training_still_running'] is True
  assert meta['checkpoint'] == 'the best checkpoint' and meta['checkpoint_epoch'] == predictor.epoch
  images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
  expected = predictor.probabilities(images)
  for batch in (images, images[:1]):  # any batch size
    got = serve(batch)
    np.testing.assert_allclose(got, expected[:len(batch)], atol=1e-5)
