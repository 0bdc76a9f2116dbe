"""The command line: every mistake a user can make is one line on stderr and exit status 2."""

import json
import os

from helpers import ROOT, run_main, write_image


def test_cli_eval_without_a_run_is_a_clean_error(tmp_path):
  result = run_main('--config=configs/residual.py', '--mode=eval', f'--workdir={tmp_path}')
  assert result.returncode == 2
  assert 'holds no training run' in result.stderr and 'Traceback' not in result.stderr


def test_cli_predict_needs_inputs(tmp_path):
  result = run_main('--config=configs/residual.py', '--mode=predict', f'--workdir={tmp_path}')
  assert result.returncode == 2 and '--inputs' in result.stderr


def test_cli_unknown_override_is_a_one_line_error():
  result = run_main('--config=configs/residual.py', '--config.model.dropuot=0.1')
  assert result.returncode == 2
  assert 'unknown config key config.model.dropuot' in result.stderr
  assert "did you mean 'dropout'" in result.stderr
  assert 'Traceback' not in result.stderr


def test_cli_bad_value_is_an_error_naming_the_key(tmp_path):
  result = run_main('--config=configs/residual.py', '--config.model.dropout=1.5',
                    f'--workdir={tmp_path / "w"}')
  assert result.returncode == 2
  assert 'config.model.dropout' in result.stderr
  assert 'Traceback' not in result.stderr
  assert not (tmp_path / 'w').exists(), 'nothing is written for a config that cannot run'


def assert_one_line_error(result, expected: str) -> None:
  assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
  assert 'Traceback' not in result.stderr, result.stderr[-2000:]
  lines = [l for l in result.stderr.splitlines() if l.startswith('error: ')]
  assert len(lines) == 1 and expected in lines[0], result.stderr[-2000:]


def test_cli_config_file_that_raises_is_one_line(tmp_path):
  bad = tmp_path / 'bad.py'
  bad.write_text('import nonexistent_module_xyz\n')
  assert_one_line_error(run_main(f'--config={bad}', f'--workdir={tmp_path / "w"}'),
                        "failed to run: ModuleNotFoundError: No module named 'nonexistent_module_xyz'")
  assert not (tmp_path / 'w').exists()


def test_cli_missing_config_file_is_one_line(tmp_path):
  assert_one_line_error(run_main(f'--config={tmp_path / "nope.py"}'), 'does not exist')


def test_cli_value_of_the_wrong_type_is_one_line(tmp_path):
  result = run_main('--config=configs/residual.py', '--config.batch_size=abc',
                    f'--workdir={tmp_path / "w"}')
  assert_one_line_error(result, 'batch_size')
  assert not (tmp_path / 'w').exists()


def test_sweep_shares_the_command_lines_error_handling(tmp_path):
  import subprocess
  import sys
  from helpers import ROOT
  result = subprocess.run([sys.executable, 'scripts/sweep.py', f'--config={tmp_path / "nope.py"}',
                           '--sweep=model.dropout=0.1'], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
  assert_one_line_error(result, 'does not exist')


def test_cli_eval_on_a_damaged_best_checkpoint_is_one_line(run, tmp_path):
  import shutil
  from helpers import damage
  from rockjax.training import checkpointing
  _, workdir, summary = run
  copy = tmp_path / 'run'
  shutil.copytree(workdir, copy)
  best = checkpointing.Checkpointer(str(copy / 'checkpoints'), read_only=True).best_epoch()
  damage(copy / 'checkpoints', best)
  result = run_main('--config=configs/residual.py', '--mode=eval', f'--workdir={copy}')
  assert_one_line_error(result, f'the best checkpoint (epoch {best})')


def test_cli_finetune_and_pretrain_configs_refuse_to_run_without_their_required_field(tmp_path):
  result = run_main('--config=configs/finetune.py', f'--workdir={tmp_path / "w"}')
  assert_one_line_error(result, 'config.init_from: this config needs it set on the command line')
  result = run_main('--config=configs/pretrain.py', f'--workdir={tmp_path / "w"}')
  assert_one_line_error(result, 'config.data.dir: this config needs it set on the command line')
  assert not (tmp_path / 'w').exists(), 'neither trains from scratch nor on the generated set'


def test_pretrain_then_finetune_from_it(tmp_path):
  """The two configs chain as their docstrings say (short runs; the mechanics are tested in
  tests/training/test_finetune.py). Through the Python API, in this process: the command line's
  flags are tested above, and two more processes cost 11 s (33 against 22 s, alone)."""
  import rockjax
  for root, names in ((tmp_path / 'large', ('a', 'b', 'c', 'd')), (tmp_path / 'rocks', ('x', 'y'))):
    for c, name in enumerate(names):
      for i in range(10):
        write_image(str(root / name / f'{i}.png'), seed=100 * c + i)
  short = dict(num_epochs=1, warmup_epochs=0, batch_size=8, num_devices=1,
               model__widths=(8, 8, 8, 8))  # a narrow net: the chaining is tested, not the net
  configs = os.path.join(ROOT, 'configs')
  rockjax.train(os.path.join(configs, 'pretrain.py'), str(tmp_path / 'pre'),
                data__dir=str(tmp_path / 'large'), **short)
  summary = rockjax.train(os.path.join(configs, 'finetune.py'), str(tmp_path / 'ft'),
                          init_from=str(tmp_path / 'pre'), data__dir=str(tmp_path / 'rocks'),
                          data__image_size=32, data__test_fraction=0.0, **short)
  assert summary['epochs'] == 1
  record = json.load(open(tmp_path / 'ft' / 'init.json'))
  assert os.path.samefile(record['source_workdir'], tmp_path / 'pre'), record
  assert record['head'] == 're-initialised', record  # 4 classes there, 2 here


def test_modes_after_training_read_the_runs_own_config(run, tmp_path):
  """eval and export name only the run (--workdir): its config.json is the config, and
  --config.<key> overrides apply on top; without --workdir or --config it is one line."""
  import shutil
  _, workdir, _ = run
  copy = tmp_path / 'run'
  shutil.copytree(workdir, copy)
  result = run_main('--mode=export', f'--workdir={copy}', '--config.export.formats=tflite',
                    '--config.export.report=False', timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert (copy / 'export' / 'model.tflite').exists() and 'tflite in' in result.stdout
  assert not (copy / 'export' / 'report.json').exists()
  preset = json.loads((copy / 'config.json').read_text())['augment']['preset']
  result = run_main('--mode=preview', f'--workdir={copy}')  # the run's photos and preset
  assert result.returncode == 0, result.stderr[-3000:]
  assert (copy / f'augment_preview_{preset}.png').exists()
  result = run_main('--mode=export', '--config.export.formats=tflite')
  assert result.returncode == 2
  assert result.stderr.strip() == 'error: --mode=export needs --workdir=RUN (the run to use), or --config'
  result = run_main('--mode=eval', f'--workdir={tmp_path / "nothing"}')
  assert result.returncode == 2 and 'holds no training run' in result.stderr
  assert result.stderr.count('\n') == 1, result.stderr
  result = run_main('--config.model.dropout=0.1')  # training names its recipe
  assert result.returncode == 2 and '--config is required for --mode=train' in result.stderr


def test_a_finished_run_names_the_commands_that_come_next():
  from rockjax import cli
  text = cli.next_commands('runs/my rocks')
  assert '--mode=eval --workdir="runs/my rocks"' in text
  assert '--mode=predict --workdir="runs/my rocks" --inputs=FOLDER_OF_PHOTOS' in text
  assert text.splitlines()[2].strip() == 'python main.py --mode=export --workdir="runs/my rocks"'


def test_mode_split_writes_every_folds_split_without_training(tmp_path):
  result = run_main('--config=tests/tiny_cli_config.py', '--mode=split', '--config.data.kfold=2',
                    f'--workdir={tmp_path}')
  assert result.returncode == 0, result.stderr[-2000:]
  lines = result.stdout.strip().splitlines()
  assert [l.split(':')[0] for l in lines[:2]] == [str(tmp_path / f'fold_{f}') for f in (0, 1)]
  assert 'training, ' in lines[0] and 'duplicate groups' in lines[0]
  assert f'--config.data.split_from={tmp_path}' in lines[-1]
  val = [json.load(open(tmp_path / f'fold_{f}' / 'split.json'))['val'] for f in range(2)]
  assert not set(val[0]) & set(val[1]) and not (tmp_path / 'fold_0' / 'checkpoints').exists()
