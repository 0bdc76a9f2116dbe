"""fileio: result files are written whole or not at all, and an earlier copy survives a failure."""

import csv
import json
import os

import pytest

from rockjax import fileio


def test_write_json_round_trip_and_no_temporary_left(tmp_path):
  path = str(tmp_path / 'report.json')
  fileio.write_json(path, {'b': 1, 'a': [1.5, None]}, sort_keys=True)
  with open(path) as f:
    assert json.load(f) == {'a': [1.5, None], 'b': 1}
  assert os.listdir(tmp_path) == ['report.json']


def test_write_json_failure_keeps_the_earlier_file(tmp_path):
  path = str(tmp_path / 'report.json')
  fileio.write_json(path, {'epoch': 3})
  with pytest.raises(TypeError):
    fileio.write_json(path, {'epoch': object()})  # not JSON-serialisable
  with open(path) as f:
    assert json.load(f) == {'epoch': 3}
  assert os.listdir(tmp_path) == ['report.json']


def test_write_csv_round_trip(tmp_path):
  path = str(tmp_path / 'table.csv')
  fileio.write_csv(path, ['file', 'p'], (['a, b.png', '0.5'], ['c.png', 1]))
  with open(path, newline='') as f:
    assert list(csv.reader(f)) == [['file', 'p'], ['a, b.png', '0.5'], ['c.png', '1']]
  assert os.listdir(tmp_path) == ['table.csv']


def test_write_csv_failure_mid_rows_keeps_the_earlier_file_and_cleans_up(tmp_path):
  path = str(tmp_path / 'table.csv')
  fileio.write_csv(path, ['x'], [[1], [2]])

  def rows():
    yield [10]
    raise RuntimeError('a row could not be built')

  with pytest.raises(RuntimeError, match='could not be built'):
    fileio.write_csv(path, ['x'], rows())
  with open(path, newline='') as f:
    assert list(csv.reader(f)) == [['x'], ['1'], ['2']]
  assert os.listdir(tmp_path) == ['table.csv']  # no half-written temporary left behind


def test_failed_rename_keeps_the_earlier_file_and_cleans_up(tmp_path, monkeypatch):
  path = str(tmp_path / 'report.json')
  fileio.write_json(path, {'epoch': 3})

  def refuse(src, dst):
    raise PermissionError(f'cannot rename {src} over {dst}')

  monkeypatch.setattr(fileio.os, 'replace', refuse)
  with pytest.raises(PermissionError, match='cannot rename'):
    fileio.write_json(path, {'epoch': 4})
  with open(path) as f:
    assert json.load(f) == {'epoch': 3}
  assert os.listdir(tmp_path) == ['report.json']


@pytest.mark.parametrize('cell', ['=1+1', '+x', '-a', '@SUM(A1)', '\tx', '\rx', "'=x", "''@x"])
def test_csv_cells_that_a_spreadsheet_would_run_are_quoted_and_read_back(tmp_path, cell):
  """A class folder named '=1+1' went unescaped into predictions.csv and opened as a formula."""
  path = str(tmp_path / 'out.csv')
  fileio.write_csv(path, ['file', 'class', 'p'], [[f'{cell}.png', cell, '-0.25'], ['a', 'b', 0.5]])
  with open(path, newline='') as f:
    rows = list(csv.reader(f))
  assert rows[1][0] == f"'{cell}.png" and rows[1][1] == f"'{cell}"
  assert rows[1][2] == '-0.25' and rows[2] == ['a', 'b', '0.5']  # numbers stay numbers
  assert [fileio.read_cell(c) for c in rows[1]] == [f'{cell}.png', cell, '-0.25']


@pytest.mark.parametrize('cell', ['plain', "'quoted", "'", '', '/abs/=x.png', '1e-3', 'a=b'])
def test_csv_cells_that_are_safe_are_written_as_they_are(cell):
  assert fileio.spreadsheet_safe(cell) == cell and fileio.read_cell(cell) == cell
