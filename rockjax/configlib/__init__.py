"""Config mechanics, knowing no subsystem: each subsystem owns its section (defaults and a
validator, in its `section.py`), and rockjax/schema.py assembles them into `base_config()` and
`validate()`.

- `Section`, `assemble`, `validate` (sections.py): a config built from sections, checked section by
  section, fields left to the command line named;
- `to_json`, `save`, `read`, `merged`, `differences` (files.py): the resolved config stored with a
  run;
- `reference.markdown` (reference.py): docs/config.md, from the sections' own comments;
- `load_config_file`, `check_arguments` (overrides.py): config files and --config.<key> overrides,
  with suggestions for unknown keys.
"""

from rockjax.configlib import reference, sections
from rockjax.configlib.files import differences, get_value, merged, read, save, set_value, to_json
from rockjax.configlib.overrides import (check_arguments, config_file_argument, load_config_file,
                                         unknown_key_message)
from rockjax.configlib.sections import Section
from rockjax.errors import ConfigError

__all__ = ['ConfigError', 'Section', 'check_arguments', 'config_file_argument', 'differences',
           'get_value', 'load_config_file', 'merged', 'read', 'reference', 'save', 'sections', 'set_value',
           'to_json', 'unknown_key_message']
