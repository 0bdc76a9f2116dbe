"""Process-wide settings rockjax applies when it is imported, before JAX or TensorFlow start.

Every entry point (main.py, scripts/, tests) imports rockjax first, so these are set in one place:

- `ENV_DEFAULTS`: quiet TensorFlow's C++ start-up chatter, and never let Albumentations look for
  updates over the network (runs must work offline). A value the user set wins.
- TensorFlow's import banner ("oneDNN custom operations are on", printed twice, which no log
  setting reaches) is dropped from stderr while TensorFlow is imported; nothing else is.
- XLA:CPU flags. jaxlib 0.10 hands 2-D convolutions on CPU to YNNPACK by default. For rockjax's
  networks XLA's own (Eigen) convolutions are faster: 1.06x training images/s at 32 px and 1.3x at
  64 px for the reference ResidualCNN on a 2-core CPU, with batch-1 latency no worse (measured side
  by side, BENCHMARKS.md). So `--xla_cpu_experimental_ynn_fusion_type=-individual_convolution` is
  appended to XLA_FLAGS, unless:
  - XLA_FLAGS already sets xla_cpu_experimental_ynn_fusion_type (the user's choice wins);
  - ROCKJAX_XLA_DEFAULTS=0 is set (opt out);
  - the installed jaxlib is not a 0.10.x release (the only one this was measured with; XLA aborts
    on flags it does not know, so the flag is never passed to a version it was not checked on).
  The flag is read when the backend starts: importing rockjax after the first JAX computation has
  no effect (and changes nothing else). GPU and TPU backends ignore it.
"""

from __future__ import annotations

import importlib.metadata
import os

ENV_DEFAULTS = {
    'TF_CPP_MIN_LOG_LEVEL': '2',  # TensorFlow, when the host input pipeline or export loads it
    'NO_ALBUMENTATIONS_UPDATE': '1',  # no update check at import: offline
}
YNN_FLAG = 'xla_cpu_experimental_ynn_fusion_type'
CPU_DEFAULTS = (f'--{YNN_FLAG}=-individual_convolution',)
CHECKED_JAXLIB = '0.10.'


def wanted_flags(environ=os.environ, jaxlib_version: str | None = None) -> list[str]:
  """The flags to append to XLA_FLAGS for this environment (empty when none apply)."""
  if environ.get('ROCKJAX_XLA_DEFAULTS', '1') == '0':
    return []
  if jaxlib_version is None:
    try:
      jaxlib_version = importlib.metadata.version('jaxlib')
    except importlib.metadata.PackageNotFoundError:
      return []
  if not jaxlib_version.startswith(CHECKED_JAXLIB):
    return []
  current = environ.get('XLA_FLAGS', '')
  return [f for f in CPU_DEFAULTS if f.split('=')[0] not in current]


def apply_xla_flags(environ=os.environ) -> list[str]:
  """Appends the wanted flags to environ['XLA_FLAGS']; returns what was appended."""
  flags = wanted_flags(environ)
  if flags:
    environ['XLA_FLAGS'] = ' '.join([environ.get('XLA_FLAGS', '')] + flags).strip()
  return flags


def apply(environ=os.environ) -> list[str]:
  """ENV_DEFAULTS (where unset), a quiet TensorFlow import (below) and the XLA flags; returns the
  XLA flags appended."""
  for key, value in ENV_DEFAULTS.items():
    environ.setdefault(key, value)
  quiet_tensorflow_import()
  return apply_xla_flags(environ)


# TensorFlow 2.21 prints "oneDNN custom operations are on ..." (and a line about absl logging)
# twice to stderr while it is imported, before any log setting applies (TF_CPP_MIN_LOG_LEVEL does
# not reach them). These lines, and only these, are dropped from what the import prints.
TF_IMPORT_NOISE = ('oneDNN custom operations are on',
                   'All log messages before absl::InitializeLog() is called')


def _filtered_stderr_while(run, drop=TF_IMPORT_NOISE):
  """Calls run() with file descriptor 2 captured, then writes every captured line back to stderr
  except those containing a `drop` phrase."""
  import sys
  import tempfile
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      return run()
    finally:
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      for line in captured.read().decode(errors='replace').splitlines(keepends=True):
        if not any(phrase in line for phrase in drop):
          sys.stderr.write(line)
      sys.stderr.flush()


class QuietTensorFlowImport:
  """A sys.meta_path finder that only wraps the first import of the `tensorflow` package so that
  its start-up banner (TF_IMPORT_NOISE) is not printed; everything else passes through."""

  def __init__(self):
    self._finding = False

  def find_spec(self, name, path=None, target=None):
    if name != 'tensorflow' or self._finding:
      return None
    import importlib.util
    self._finding = True
    try:
      spec = importlib.util.find_spec(name)
    finally:
      self._finding = False
    if spec is None or spec.loader is None or not hasattr(spec.loader, 'exec_module'):
      return spec
    loader = spec.loader

    class Loader:
      def create_module(self, spec):
        return loader.create_module(spec)

      def exec_module(self, module):
        _filtered_stderr_while(lambda: loader.exec_module(module))

      def __getattr__(self, name):  # everything else (resources, is_package, ...) as it was
        return getattr(loader, name)

    spec.loader = Loader()
    return spec


def quiet_tensorflow_import() -> None:
  """Installs QuietTensorFlowImport once (before TensorFlow is imported; no effect after)."""
  import sys
  if 'tensorflow' not in sys.modules and not any(
      isinstance(f, QuietTensorFlowImport) for f in sys.meta_path):
    sys.meta_path.insert(0, QuietTensorFlowImport())
