"""docs/config.md: every config field, its default and what it does, generated from the sections'
own comments (the line that sets a field, its trailing comment and the comment lines just above)
and their `docs` (for fields set in a loop, such as the augmentation knobs).

`python scripts/config_reference.py` writes it; tests/configlib/test_reference.py fails when it is
out of date.
"""

from __future__ import annotations

import inspect
import json
import re

from rockjax.configlib.files import flatten

# `name = value`, `x.name = value`, `c['name'] = value` or `name=value,` with a trailing comment.
_ASSIGN = re.compile(r"""^\s*(?:[\w.]+\.|\w+\[')?(?P<name>\w+)'?\]?\s*=(?!=)""")

HEADER = """# Config reference

Every field of `rockjax.schema.base_config()`, its default and what it does, section by section.
Set any of them with `--config.<key>=<value>` on the command line, or in a config file. Generated
by `python scripts/config_reference.py` from each section's own comments (the module named under
each heading); `tests/configlib/test_reference.py` fails when this file is out of date.
"""


def _split(line: str) -> tuple[str, str]:
  """A source line as (code, trailing comment); a '#' inside quotes starts no comment."""
  quote = None
  for i, ch in enumerate(line):
    if quote:
      quote = None if ch == quote else quote
    elif ch in '\'"':
      quote = ch
    elif ch == '#':
      return line[:i], line[i + 1:].strip()
  return line, ''


def field_comments(sources) -> dict[str, str]:
  """Dotted field name (relative to its section) -> its description, read from the source of
  each function or module in `sources`: the comment lines right above the line that sets it and
  that line's trailing comment. A field whose value is a dict spread over several lines names the
  fields inside it `parent.child`; the comment on the line that closes it is the parent's."""
  docs = {}
  for source in sources:
    pending, stack, depth = [], [], 0  # stack: (name, depth where its value opened)
    for line in inspect.getsource(source).splitlines():
      code, comment = _split(line)
      if not code.strip():
        if comment:
          pending.append(comment)
        continue
      match = _ASSIGN.match(code)
      opened = depth
      depth += code.count('(') + code.count('[') - code.count(')') - code.count(']')
      if match and not code.strip().startswith(('def ', 'return ', 'for ', 'if ', 'elif ')):
        name = '.'.join([n for n, _ in stack] + [match.group('name')])
        docs.setdefault(name, ' '.join(pending + ([comment] if comment else [])))
        if depth > opened:  # a value that goes on below: a nested dict (or a long call)
          stack.append((match.group('name'), opened))
      while stack and depth <= stack[-1][1]:  # this line closes the parent's value
        parent = '.'.join(n for n, _ in stack)
        if comment and not docs.get(parent):
          docs[parent] = ' '.join(pending + [comment])
        stack.pop()
      pending = []
  return docs


def _value(value) -> str:
  return '`' + json.dumps(value, default=list).replace('|', '\\|') + '`'


def _describe(key: str, docs: dict[str, str]) -> str:
  """A dotted key's description: its own, else the nearest parent's."""
  if docs.get(key):
    return docs[key]
  inside = [k for k in docs if k.endswith('.' + key) and docs[k]]  # in a container: fields=dict(
  if inside:
    return docs[inside[0]]
  parts = key.split('.')
  for i in range(len(parts) - 1, 0, -1):
    parent = '.'.join(parts[:i])
    if docs.get(parent):
      return f'(in `{parent}`) {docs[parent]}'
  return ''


def markdown(sections, config) -> str:
  """docs/config.md for `config` (schema.base_config()) assembled from `sections`."""
  out = [HEADER.rstrip('\n')]
  for section in sections:
    docs = field_comments(section.sources or (section.defaults,))
    docs.update(section.docs() if section.docs else {})
    node = config[section.name] if section.name else {k: config[k] for k in section.defaults()}
    node = node.to_dict() if hasattr(node, 'to_dict') else {
        k: (v.to_dict() if hasattr(v, 'to_dict') else v) for k, v in node.items()}
    title = f'`{section.name}`' if section.name else 'Top level'
    modules = sorted({s.__module__ if not inspect.ismodule(s) else s.__name__
                      for s in (section.sources or (section.defaults,))})
    out += ['', f'## {title}', '', 'From ' + ', '.join(f'`{m}`' for m in modules) + '.', '',
            '| key | default | what it does |', '|---|---|---|']
    prefix = f'{section.name}.' if section.name else ''
    for key, value in flatten(node).items():
      text = _describe(key, docs).replace('|', '\\|')
      out.append(f'| `{prefix}{key}` | {_value(value)} | {text} |')
  return '\n'.join(out) + '\n'
