"""pyproject.toml packages every sub-package and the shipped configs; an installed `rockjax` finds
the recipes by name from any folder (scripts/check_install.sh installs the wheel and runs it)."""

import os
import tomllib

from helpers import ROOT
from rockjax import cli


def test_pyproject_lists_every_sub_package_and_the_recipes():
  with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
    project = tomllib.load(f)
  packages = set(project['tool']['setuptools']['packages'])
  found = {'rockjax'} | {f'rockjax.{d}' for d in os.listdir(os.path.join(ROOT, 'rockjax'))
                         if os.path.exists(os.path.join(ROOT, 'rockjax', d, '__init__.py'))}
  assert packages == found | {'rockjax.recipes'}
  assert project['tool']['setuptools']['package-dir'] == {'rockjax.recipes': 'configs'}
  assert project['project']['scripts'] == {'rockjax': 'rockjax.command:run'}


def test_a_config_path_that_is_not_here_names_the_shipped_recipe(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # no configs/ folder here
  shipped = os.path.join(cli.recipes_dir(), 'rocks.py')
  assert cli.with_run_config(['prog', '--config=configs/rocks.py', '--config.seed=1']) == [
      'prog', f'--config={shipped}', '--config.seed=1']
  assert cli.with_run_config(['prog', '--config', 'configs/rocks.py:x']) == [
      'prog', '--config', f'{shipped}:x']
  (tmp_path / 'configs').mkdir()
  (tmp_path / 'configs' / 'rocks.py').write_text('')  # a file of that name here wins
  assert cli.with_run_config(['prog', '--config=configs/rocks.py']) == [
      'prog', '--config=configs/rocks.py']
  assert cli.with_run_config(['prog', '--mode=eval', '--workdir=W']) == [
      'prog', f'--config={os.path.join(cli.recipes_dir(), "run.py")}:W', '--mode=eval',
      '--workdir=W']
