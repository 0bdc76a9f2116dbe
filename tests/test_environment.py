"""XLA:CPU defaults: appended once, never over a user's own setting, only for the checked jaxlib."""

import os
import subprocess
import sys

from rockjax import environment
from helpers import ROOT

FLAG = '--xla_cpu_experimental_ynn_fusion_type=-individual_convolution'


def test_flag_is_wanted_for_the_checked_jaxlib_only():
  assert environment.wanted_flags({}, '0.10.2') == [FLAG]
  assert environment.wanted_flags({'XLA_FLAGS': '--xla_force_host_platform_device_count=8'},
                                '0.10.7') == [FLAG]
  assert environment.wanted_flags({}, '0.11.0') == []  # unchecked: XLA aborts on unknown flags
  assert environment.wanted_flags({}, '0.9.2') == []


def test_users_own_setting_and_the_opt_out_win():
  mine = {'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=individual_dot'}
  assert environment.wanted_flags(mine, '0.10.2') == []
  assert environment.wanted_flags({'ROCKJAX_XLA_DEFAULTS': '0'}, '0.10.2') == []


def test_apply_appends_once_and_keeps_other_flags():
  env = {'XLA_FLAGS': '--xla_force_host_platform_device_count=8'}
  if not environment.wanted_flags(env):
    return  # another jaxlib: nothing to apply (checked above with explicit versions)
  assert environment.apply_xla_flags(env) == [FLAG]
  assert env['XLA_FLAGS'] == f'--xla_force_host_platform_device_count=8 {FLAG}'
  assert environment.apply_xla_flags(env) == []
  assert env['XLA_FLAGS'].count('ynn_fusion_type') == 1


def test_importing_rockjax_sets_the_flag_before_jax_starts_and_jax_accepts_it():
  code = ('import os, rockjax, jax, jax.numpy as jnp\n'
          'x = jnp.ones((1, 8, 8, 3)); k = jnp.ones((3, 3, 3, 4))\n'
          'y = jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", '
          'dimension_numbers=("NHWC", "HWIO", "NHWC"))\n'
          'print(float(y[0, 4, 4, 0]), os.environ.get("XLA_FLAGS", ""))')
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  env['PYTHONPATH'] = ROOT
  out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
  assert out.returncode == 0, out.stderr[-2000:]
  value, flags = out.stdout.split(maxsplit=1)
  assert float(value) == 27.0  # a 3x3x3 window of ones
  assert flags.strip() == ' '.join(environment.wanted_flags({}))


def test_importing_tensorflow_prints_no_onednn_banner():
  """TensorFlow prints its oneDNN banner twice while it is imported; rockjax drops those lines
  (and only those)."""
  code = ('import rockjax, sys\n'
          'import tensorflow\n'
          'print("kept", file=sys.stderr)\n')
  out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
  assert out.returncode == 0, out.stderr[-2000:]
  assert 'oneDNN' not in out.stderr and 'InitializeLog' not in out.stderr
  assert 'kept' in out.stderr


def test_the_stderr_filter_drops_only_the_listed_phrases(capfd):
  def noisy():
    os.write(2, b'oneDNN custom operations are on: noise\nsomething that matters\n')
    return 42
  assert environment._filtered_stderr_while(noisy) == 42
  err = capfd.readouterr().err
  assert 'something that matters' in err and 'oneDNN' not in err
