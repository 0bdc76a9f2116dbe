"""The sections of the modes that come after training: `config.eval`, `config.predict`,
`config.export` and `config.preview`. Label-issue methods come from label_issues.py."""

from __future__ import annotations

import ml_collections

from rockjax.checks import check, choice, fraction, positive
from rockjax.serving import label_issues

TEST_TIME_OVERRIDES = ('run', 'on', 'off')  # eval.test_time_flip, eval.test_time_rotate
CHECKPOINTS = ('best', 'latest')  # eval.checkpoint
EVAL_SPLITS = ('val', 'test')  # eval.split


def eval_defaults() -> ml_collections.ConfigDict:  # --mode=eval
  e = ml_collections.ConfigDict()
  e.dir = ''  # a class-per-folder set to evaluate on; '' means the run's saved split
  e.split = 'val'  # val | test: which saved split (test: the held-out test split, once)
  e.batch_size = 256  # images per evaluation call
  e.num_errors_shown = 24  # most confidently wrong images in eval/most_confident_errors.png
  e.num_label_issues_shown = 48  # k-fold eval: top label issues in eval/label_issues.png
  # k-fold eval: how photos are flagged (serving/label_issues.py): prune_by_noise_rate (recall
  # first) | confident_joint (fewer flags, higher precision) | predicted_neq_given (baseline)
  e.label_issues_method = 'prune_by_noise_rate'
  e.test_time_flip = 'run'  # run: as the run was trained | on | off: override, for this eval
  e.test_time_rotate = 'run'  # the same for the quarter turns (test_time_rotate)
  e.checkpoint = 'best'  # best | latest (the final epoch of a finished run): which one to score
  e.output_dir = ''  # where eval writes its report and plots; '' means <workdir>/eval
  return e


def validate_eval(config) -> None:
  positive(config, 'eval.batch_size')
  positive(config, 'eval.num_errors_shown', allow_zero=True)
  positive(config, 'eval.num_label_issues_shown', allow_zero=True)
  choice(config, 'eval.test_time_flip', TEST_TIME_OVERRIDES)
  choice(config, 'eval.test_time_rotate', TEST_TIME_OVERRIDES)
  choice(config, 'eval.checkpoint', CHECKPOINTS)
  choice(config, 'eval.split', EVAL_SPLITS)
  choice(config, 'eval.label_issues_method', label_issues.METHODS)
  check(not (config.eval.dir and config.eval.split == 'test'), 'eval.split',
        'test evaluates the run\'s saved test split; with eval.dir set, leave eval.split=val')


def predict_defaults() -> ml_collections.ConfigDict:  # --mode=predict
  p = ml_collections.ConfigDict()
  p.batch_size = 256  # photos per prediction call
  p.latency_runs = 0  # > 0 (e.g. 200): also time batch-1 latency and throughput
  p.output_dir = ''  # where predictions.csv goes; '' means the workdir
  p.allow_missing = False  # True: named inputs that are not found do not fail the run
  # > 0: photos whose top probability is under this are answered 'uncertain' in predictions.csv
  # (pick it from eval/accuracy_coverage.png and report.json's `coverage`); 0 answers them all
  p.min_confidence = 0.0
  # True: each photo beside a map of where the network looked for its answer (Grad-CAM), as PNGs
  # in <output folder>/explained/ (serving/saliency.py), for the first explain_limit photos
  p.explain = False
  p.explain_limit = 200  # predict.explain: maps for at most this many photos (the first ones)
  return p


def validate_predict(config) -> None:
  positive(config, 'predict.batch_size')
  positive(config, 'predict.latency_runs', allow_zero=True)
  fraction(config, 'predict.min_confidence', True, False, ' (0 answers every photo)')
  positive(config, 'predict.explain_limit')


def export_defaults() -> ml_collections.ConfigDict:  # --mode=export (docs/deployment.md)
  x = ml_collections.ConfigDict()
  x.formats = 'saved_model'  # comma-separated: saved_model, tflite, tflite_int8, onnx
  x.calibration_images = 600  # training images that calibrate tflite_int8
  x.report = True  # export/report.json: each format's accuracy and latency on this CPU
  x.latency_runs = 100  # batch-1 calls timed per format for the report; 0 skips timing
  x.output_dir = ''  # where the export goes; '' means <workdir>/export
  return x


def validate_export(config) -> None:
  positive(config, 'export.calibration_images')
  positive(config, 'export.latency_runs', allow_zero=True)


def preview_defaults() -> ml_collections.ConfigDict:  # --mode=preview
  return ml_collections.ConfigDict(dict(
      per_class=2,  # photos of each class shown
      versions=5,  # augmented versions of each photo
  ))


def validate_preview(config) -> None:
  positive(config, 'preview.per_class')
  positive(config, 'preview.versions')
