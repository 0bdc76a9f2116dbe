"""rockjax/bench/timing.py: contenders timed in turns, latency percentiles, the machine record."""

import json

import pytest

from rockjax.bench import timing


class FakeClock:
  """time.perf_counter that only moves when a contender works."""

  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


@pytest.fixture
def clock(monkeypatch):
  fake = FakeClock()
  monkeypatch.setattr(timing.time, 'perf_counter', fake)
  return fake


def test_median_rates_takes_turns_and_divides_work_by_the_median_time(clock):
  calls = []
  durations = {'a': iter([1.0, 9.0, 2.0]), 'b': iter([0.5, 0.5, 4.0])}

  def contender(name):
    def run():
      calls.append(name)
      clock.now += next(durations[name])
    return run

  rates = timing.median_rates({'a': contender('a'), 'b': contender('b')}, 3, {'a': 10, 'b': 3})
  assert calls == ['a', 'b'] * 3  # turns within every round
  assert rates == {'a': 10 / 2.0, 'b': 3 / 0.5}  # medians 2.0 and 0.5: outliers do not count


def test_latency_is_measured_after_the_warmup(clock):
  steps = iter([100.0, 100.0] + [0.001 * (i + 1) for i in range(100)])

  def fn():
    clock.now += next(steps)

  p50, p99 = timing.latency_ms(fn, runs=100, warmup=2)
  assert p50 == pytest.approx(50.5) and p99 == pytest.approx(99.01)


def test_machine_names_the_backend_and_libraries_and_keeps_extras(tmp_path):
  info = timing.machine(quick=True)
  assert info['jax_backend'] == 'cpu' and info['cpu_count'] >= 1 and info['quick'] is True
  assert 'jax' in info['libraries'] and 'flax' in info['libraries']
  out = tmp_path / 'new' / 'folder' / 'result.json'
  timing.write_json(str(out), info)
  assert json.loads(out.read_text()) == info
