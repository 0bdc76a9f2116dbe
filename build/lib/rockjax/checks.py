"""Value checks that turn a bad config value into a `ConfigError` naming its key.

A low-level module (it imports only rockjax.errors): configlib and every subsystem that validates
its own config section use the same checks and the same wording.
"""

from __future__ import annotations

import math
from typing import Any

from rockjax.errors import ConfigError


def get_value(config, key: str) -> Any:
  """config.<dotted key>."""
  value = config
  for part in key.split('.'):
    value = value[part]
  return value


def check(ok: bool, key: str, message: str) -> None:
  if not ok:
    raise ConfigError(f'config.{key}: {message}')


def choice(config, key: str, choices) -> None:
  value = get_value(config, key)
  check(value in choices, key, f'{value!r} is not one of {tuple(choices)}')


def positive(config, key: str, allow_zero: bool = False) -> None:
  value = get_value(config, key)
  ok = value >= 0 if allow_zero else value > 0
  check(ok and math.isfinite(value), key,
        f'must be {"non-negative" if allow_zero else "positive"}, got {value!r}')


def fraction(config, key: str, low_closed: bool, high_closed: bool, note: str = '') -> None:
  value = get_value(config, key)
  ok = (0.0 <= value if low_closed else 0.0 < value) and (value <= 1.0 if high_closed
                                                          else value < 1.0)
  interval = f'{"[" if low_closed else "("}0, 1{"]" if high_closed else ")"}'
  check(ok, key, f'must be in {interval}{note}, got {value!r}')
