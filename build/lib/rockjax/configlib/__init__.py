"""The config: the single source of truth for every tunable.

- `base_config()` (defaults.py): the defaults that every `configs/*.py` starts from;
- `validate(config)` (validation.py): a bad value becomes a `ConfigError` that names the key;
- `to_json`, `save`, `load`, `differences` (files.py): the resolved config stored with a run;
- `load_config_file`, `check_arguments` (overrides.py): config files and --config.<key> overrides.
"""

from rockjax.configlib.defaults import base_config
from rockjax.configlib.files import (differences, get_value, load, save, set_value, to_json,
                                     with_defaults)
from rockjax.configlib.overrides import (check_arguments, config_file_argument, load_config_file,
                                         unknown_key_message)
from rockjax.configlib.validation import validate
from rockjax.errors import ConfigError

__all__ = ['ConfigError', 'base_config', 'check_arguments', 'config_file_argument', 'differences',
           'get_value', 'load',
           'load_config_file', 'save', 'set_value', 'to_json', 'unknown_key_message', 'validate',
           'with_defaults']
