"""faults: Ctrl-C and SIGTERM are never lost, even when their exception is raised where Python
swallows it (a garbage-collection callback, as JAX registers)."""

import gc
import os
import signal

import pytest

from rockjax.errors import Interrupted, Terminated
from rockjax.training import faults


def signal_inside_gc_callback(signum):
  """Delivers `signum` to this process while a gc callback runs: the handler raises there, and
  Python drops the exception ('Exception ignored in'), as it did inside JAX's callback."""
  def callback(phase, info):
    if phase == 'start':
      os.kill(os.getpid(), signum)
      for _ in range(1000):  # the handler runs at the next bytecode boundary, inside the callback
        pass
  gc.callbacks.append(callback)
  try:
    gc.collect()
  finally:
    gc.callbacks.remove(callback)


@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
@pytest.mark.parametrize('signum, exc_type', [(signal.SIGINT, KeyboardInterrupt),
                                              (signal.SIGTERM, Terminated)])
def test_a_signal_swallowed_in_a_callback_is_raised_at_the_next_check(signum, exc_type):
  with faults.signals_as_interrupts():
    signal_inside_gc_callback(signum)  # returns normally: the exception was swallowed
    with pytest.raises(exc_type):
      faults.raise_pending_signal()
    faults.raise_pending_signal()  # raised once, not again


def test_a_caught_interrupt_leaves_nothing_to_raise_and_handlers_are_restored(tmp_path):
  before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

  class Loop:
    epoch = 3
  with faults.signals_as_interrupts():
    with pytest.raises(Interrupted, match='terminated \\(SIGTERM\\) during epoch 4') as e:
      with faults.one_line(str(tmp_path), Loop):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):
          pass
    assert e.value.status == faults.TERMINATE_STATUS
    faults.raise_pending_signal()  # the interrupt was handled: nothing pending
  assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_without_a_signal_the_check_does_nothing():
  with faults.signals_as_interrupts():
    faults.raise_pending_signal()
