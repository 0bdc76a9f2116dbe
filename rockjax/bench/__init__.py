"""What rockjax's benchmarks and checks share (scripts/): their one door into the package.

Scripts use the public API (`rockjax.config`, `train`, `load`, `evaluate`, `export`,
`decode_folder`; rockjax/api.py), the command line's own helpers (rockjax/cli.py) and this
package, never the sub-packages directly (tests/test_architecture.py checks): when the internals
move, this is the one place that follows them, and a script keeps only its own question.

- timing.py: contenders timed in turns, latency percentiles, the machine a result came from;
- training.py: the train step alone on batches already on the device, an epoch through the
  configured feed, the input pipelines alone, a predictor with fresh weights;
- studied.py: the internals the checks measure by name (the depthwise formulations, the
  EfficientNet-Lite block table and the ImageNet weights, the near-duplicate search, the label-issue
  methods, reading a class-folder tree).
"""

from rockjax.bench.timing import latency_ms, machine, median_rates, write_json
from rockjax.bench.training import (EpochRunner, TrainStep, data_root, fresh_predictor,
                                    frozen_modules, host_augmenter, host_batches,
                                    in_memory_dataset, load_dataset, make_runtime,
                                    steps_per_epoch, streamed_batches)

__all__ = ['EpochRunner', 'TrainStep', 'data_root', 'fresh_predictor', 'frozen_modules',
           'host_augmenter', 'host_batches', 'in_memory_dataset', 'latency_ms', 'load_dataset',
           'machine', 'make_runtime', 'median_rates', 'steps_per_epoch', 'streamed_batches',
           'write_json']
