"""Writes docs/config.md: every config field, its default and its description, generated from the
config sections' own comments (rockjax/schema.py lists the sections; rockjax/configlib/reference.py
reads them). tests/configlib/test_reference.py fails when the file is out of date.

    python scripts/config_reference.py
"""

import os
import sys

import _bootstrap  # noqa: F401  (the repository root on sys.path)

from rockjax import schema

PATH = os.path.join(_bootstrap.ROOT, 'docs', 'config.md')


def main() -> int:
  text = schema.reference()
  tmp = PATH + '.tmp'
  with open(tmp, 'w') as f:
    f.write(text)
  os.replace(tmp, PATH)
  print(f'wrote {PATH} ({text.count(chr(10))} lines)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
