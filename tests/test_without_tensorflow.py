"""A machine with JAX but without TensorFlow (or Albumentations), like a GPU or TPU image: the
device data path trains, checkpoints, evaluates and predicts; the TensorFlow paths say what they
need in one line."""

import json
import os
import subprocess
import sys

from helpers import ROOT

SCRIPT = '''
import json, os, sys
for name in ('tensorflow', 'albumentations', 'keras'):
  sys.modules[name] = None  # `import tensorflow` now raises ImportError
sys.path[:0] = [ROOT, os.path.join(ROOT, 'tests')]
from helpers import tiny_config, write_image
from rockjax import cli, errors
from rockjax.serving import evaluation, predict
from rockjax.training import checkpointing

workdir = os.path.join(OUT, 'run')
config = tiny_config(num_epochs=2, data__where='device', augment__where='device',
                     augment__preset='strong', steps_per_dispatch=3)
summary = cli.run_training(config, workdir)
ckpt = checkpointing.Checkpointer(os.path.join(workdir, 'checkpoints'), read_only=True)
report = evaluation.evaluate_workdir(workdir, config.eval)
images = [write_image(os.path.join(OUT, 'new', f'{i}.png'), seed=i) for i in range(3)]
predicted = predict.predict_workdir(workdir, [os.path.join(OUT, 'new')], config.predict)
refusals = {}
for name, call in (('host', lambda: cli.run_training(tiny_config(), os.path.join(OUT, 'host'))),
                   ('export', lambda: cli.export(config, workdir, []))):
  try:
    call()
  except errors.UserError as e:
    refusals[name] = str(e)
print(json.dumps(dict(
    epochs=summary['epochs'], best=summary['best_val_accuracy'], latest=ckpt.latest_epoch(),
    best_epoch=ckpt.best_epoch(), eval_accuracy=report['accuracy'],
    predicted=predicted['num_predicted'], refusals=refusals,
    host_workdir_claimed=os.path.exists(os.path.join(OUT, 'host')),
    events=os.listdir(os.path.join(workdir, 'tensorboard')),
    loaded=sorted(m for m in ('tensorflow', 'albumentations', 'keras')
                  if sys.modules.get(m) is not None))))
'''


def test_training_evaluation_and_prediction_without_tensorflow(tmp_path):
  code = f'ROOT = {ROOT!r}\nOUT = {str(tmp_path)!r}\n' + SCRIPT
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=600,
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result['epochs'] == 2 and result['latest'] == 2
  assert result['best_epoch'] in (1, 2)
  assert abs(result['eval_accuracy'] - result['best']) < 1e-9  # eval reproduces training's best
  assert result['predicted'] == 3
  assert 'data.where' in result['refusals']['host'] and 'TensorFlow' in result['refusals']['host']
  assert not result['host_workdir_claimed']
  assert 'needs TensorFlow' in result['refusals']['export']
  # TensorBoard events, written without TensorFlow (and eval's figures as images, in eval/)
  assert len([n for n in result['events'] if n.startswith('events.')]) == 1
  assert 'eval' in result['events']
  assert result['loaded'] == []
