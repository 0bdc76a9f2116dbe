"""docs/config.md is generated from the config sections' own comments, and kept up to date."""

import os

import pytest

from helpers import ROOT
from rockjax import configlib, schema
from rockjax.configlib import reference
from rockjax.configlib.files import flatten


def test_docs_config_md_is_up_to_date():
  with open(os.path.join(ROOT, 'docs', 'config.md')) as f:
    saved = f.read()
  assert saved == schema.reference(), (
      'docs/config.md is out of date: run python scripts/config_reference.py')


def test_every_field_is_listed_with_its_default_and_a_description():
  text = schema.reference()
  rows = {line.split('`')[1]: line for line in text.splitlines() if line.startswith('| `')}
  assert set(rows) == set(flatten(schema.base_config().to_dict()))
  undocumented = [key for key, line in rows.items() if line.rstrip().endswith('|  |')]
  assert not undocumented, f'give these fields a comment in their section: {undocumented}'
  assert '| `learning_rate` | `0.0001` | Adam' in text
  assert '| `data.synthetic.seed` | `0` | the generator\'s seed |' in text


def _example():
  d = {}
  # The comment lines above a field
  d['plain'] = 1  # and its trailing comment
  d['quoted'] = '#not a comment'  # the comment after the string
  d['nested'] = dict(
      inner=2,  # inner's own
  )  # nested as a whole
  return d


def test_comments_are_read_from_the_source_lines_that_set_each_field():
  docs = reference.field_comments((_example,))
  assert docs['plain'] == 'The comment lines above a field and its trailing comment'
  assert docs['quoted'] == 'the comment after the string'
  assert docs['nested.inner'] == "inner's own"
  assert docs['nested'] == 'nested as a whole'


def test_a_field_added_without_a_comment_is_caught(monkeypatch):
  section = configlib.Section('extra', lambda: {'documented': 1,  # noqa
                                                'bare': 2}, lambda config: None)
  config = schema.base_config()
  config.extra = section.defaults()
  text = reference.markdown((section,), config)
  assert '| `extra.bare` | `2` |  |' in text


@pytest.mark.parametrize('key', ['eval.batch_size', 'predict.batch_size', 'batch_size'])
def test_same_leaf_names_in_different_sections_keep_their_own_descriptions(key):
  text = schema.reference()
  line = next(l for l in text.splitlines() if l.startswith(f'| `{key}` |'))
  assert {'eval.batch_size': 'evaluation', 'predict.batch_size': 'prediction',
          'batch_size': 'global'}[key] in line
