"""`--mode=predict`: class probabilities for new images, and how fast the model answers.

Inputs are files, folders (searched recursively) or glob patterns. Every input that is not predicted
is accounted for, with its reason: named but not found, a pattern or folder that matched nothing, not
an image, unreadable. Missing inputs make the exit status non-zero (after the others are written)
unless `predict.allow_missing` is set. Writes `<workdir>/predictions.csv` (file, predicted class, probability of every
class) and reports batch-1 latency (p50, p99) and batched throughput on this machine.
"""

from __future__ import annotations

import glob
import os
import time

import numpy as np
from absl import logging

from rockjax import fileio
from rockjax.data import folder, imageio
from rockjax.errors import DataError, WorkdirError
from rockjax.serving import coverage, predictor as predictors, saliency


class NoInputsError(DataError):
  """The given inputs matched no image file."""


def read_list_files(specs: list[str]) -> list[str]:
  """`@FILE` entries replaced by the paths FILE lists, one per line (for names with commas)."""
  out = []
  for spec in specs:
    spec = spec.strip()
    if not spec.startswith('@'):
      out.append(spec)
      continue
    try:
      with open(os.path.expanduser(spec[1:])) as f:
        out += [line.rstrip('\n') for line in f if line.strip()]
    except OSError as e:
      raise DataError(f'--inputs {spec!r}: cannot read the list file ({e})') from e
  return out


NOT_FOUND = 'not_found'  # a named path that does not exist
MATCHED_NOTHING = 'matched_nothing'  # a pattern, or a folder, that holds no image file


class MissingInputsError(DataError):
  """Named inputs were not found; the predictions of the others are written all the same."""


def find_inputs(specs: list[str], extensions) -> tuple[list[str], list[tuple[str, str]]]:
  """(the image files the inputs name, sorted; every input that names none, with its reason).

  Inputs are files named directly, folders (searched recursively for image files), glob patterns
  and the paths that `@FILE` list files name."""
  found, missing = [], []
  for spec in read_list_files(specs):
    spec = os.path.expanduser(spec.strip())
    if not spec:
      continue
    matches = sorted(glob.glob(spec, recursive=True)) if glob.has_magic(spec) else [spec]
    before = len(found)
    for path in matches:
      if os.path.isdir(path):
        for dirpath, dirnames, filenames in os.walk(path):
          dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
          found += [os.path.join(dirpath, f) for f in sorted(filenames)
                    if not f.startswith('.') and os.path.splitext(f)[1].lower() in extensions]
      elif os.path.exists(path):
        found.append(path)
    if len(found) == before:
      missing.append((spec, MATCHED_NOTHING if matches and os.path.exists(matches[0])
                      or glob.has_magic(spec) else NOT_FOUND))
  return sorted(dict.fromkeys(os.path.abspath(p) for p in found)), missing


def expand_inputs(specs: list[str], extensions) -> list[str]:
  """The image files the inputs name, sorted (`find_inputs`); none at all is an error."""
  paths, missing = find_inputs(specs, extensions)
  if not paths:
    raise NoInputsError(f'--inputs {specs} matched no image file'
                        + (f' ({describe_missing(missing)})' if missing else ''))
  return paths


def describe_missing(missing: list[tuple[str, str]], shown: int = 5) -> str:
  """'2 not found: a.png, b.png; 1 matched nothing: c*.png' (at most `shown` names per reason)."""
  parts = []
  for reason in (NOT_FOUND, MATCHED_NOTHING):
    names = [spec for spec, r in missing if r == reason]
    if names:
      more = f' and {len(names) - shown} more' if len(names) > shown else ''
      parts.append(f'{len(names)} {reason.replace("_", " ")}: {", ".join(names[:shown])}{more}')
  return '; '.join(parts)


def read_inputs(paths: list[str], options: folder.ReadOptions):
  images, good, skipped = [], [], []
  for path in paths:
    try:
      images.append(imageio.load_image(path, options.image_size, options.interpolation,
                                        options.aspect, options.background))
      good.append(path)
    except imageio.BadImage as e:
      skipped.append((path, e.reason, e.detail))
      logging.warning('Skipping %s: %s', path, e)
  size = options.image_size
  stacked = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
  return stacked, good, skipped


def measure_speed(predictor: predictors.Predictor, image: np.ndarray, runs: int,
                  batch_size: int) -> dict:
  """Batch-1 latency percentiles and batched throughput of the jitted predictor (after warm-up)."""
  one = image[None]
  latency = latency_ms(lambda x: predictor.probabilities(x, batch_size=1), one, runs)
  batch = np.repeat(one, batch_size, axis=0)
  predictor.probabilities(batch, batch_size=batch_size)  # compile the batched shape
  repeats = max(3, runs // 20)
  start = time.perf_counter()
  for _ in range(repeats):
    predictor.probabilities(batch, batch_size=batch_size)
  seconds = time.perf_counter() - start
  return dict(batch1_p50_ms=latency['p50_ms'], batch1_p99_ms=latency['p99_ms'],
              batch1_runs=runs, throughput_images_per_s=batch_size * repeats / seconds,
              throughput_batch_size=batch_size)


def latency_ms(fn, batch: np.ndarray, runs: int) -> dict:
  """Latency of `fn(batch)` over `runs` calls after two warm-up calls (compiles): p50 and p99, ms.
  Every format's batch-1 figure is measured with it (--mode=predict, export/report.json)."""
  for _ in range(2):
    fn(batch)
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    fn(batch)
    times.append(1e3 * (time.perf_counter() - start))
  return dict(p50_ms=float(np.percentile(times, 50)), p99_ms=float(np.percentile(times, 99)))


def write_csv(path: str, files: list[str], probabilities: np.ndarray, class_names,
              min_confidence: float = 0.0) -> list[str]:
  """One row per image: file, predicted (top) class, its probability, the answer (the top class,
  or 'uncertain' under predict.min_confidence), p(class) for every class. Returns the answers."""
  header = ['file', 'predicted_class', 'probability', 'answer'] + [f'p_{c}' for c in class_names]
  answers = coverage.answers(probabilities, class_names, min_confidence)
  fileio.write_csv(path, header, ([f, class_names[int(p.argmax())], f'{p.max():.6f}', a]
                                  + [f'{x:.6f}' for x in p]
                                  for f, p, a in zip(files, probabilities, answers)))
  return answers


def predict_workdir(workdir: str, inputs: list[str], predict_config) -> dict:
  predictor = predictors.load_predictor(workdir, calibrated=True)
  options = predictor.read_options
  paths, missing = find_inputs(inputs, options.extensions)
  if not paths:
    raise NoInputsError(f'--inputs {inputs} matched no image file'
                        + (f' ({describe_missing(missing)})' if missing else ''))
  for spec, reason in missing:
    logging.warning('Input %r: %s.', spec, reason.replace('_', ' '))
  start = time.perf_counter()
  images, good, skipped = read_inputs(paths, options)
  skipped = [(spec, reason, '') for spec, reason in missing] + skipped
  read_seconds = time.perf_counter() - start
  if not good:
    raise NoInputsError(f'none of the {len(paths)} input file(s) could be read as an image')
  probabilities = predictor.probabilities(images, predict_config.batch_size)
  out = os.path.join(predict_config.output_dir or workdir, 'predictions.csv')
  try:
    os.makedirs(os.path.dirname(out), exist_ok=True)
    answers = write_csv(out, good, probabilities, predictor.class_names,
                        predict_config.min_confidence)
  except OSError as e:
    raise WorkdirError(f'cannot write {out!r} ({type(e).__name__}: {e}); pass '
                       '--config.predict.output_dir=FOLDER to write it elsewhere') from e
  if predict_config.explain:
    explained = os.path.join(os.path.dirname(out), 'explained')
    limit = predict_config.explain_limit
    saliency.write_overlays(predictor, images[:limit], good[:limit], explained)
    logging.info('Maps of where the network looked: %s (%d photo(s)%s).', explained,
                 min(limit, len(good)), f' of {len(good)}: predict.explain_limit' if
                 len(good) > limit else '')
  speed = measure_speed(predictor, images[0], predict_config.latency_runs,
                        predict_config.batch_size) if predict_config.latency_runs else {}
  summary = dict(num_predicted=len(good), num_skipped=len(skipped),
                 skipped=[dict(path=p, reason=r, detail=d) for p, r, d in skipped],
                 read_seconds=read_seconds, predictions=out, checkpoint_epoch=predictor.epoch,
                 temperature=predictor.temperature,
                 num_uncertain=answers.count(coverage.UNCERTAIN),
                 min_confidence=predict_config.min_confidence, **speed)
  summary['skipped_by_reason'] = by_reason = {}
  for _, reason, _ in skipped:
    by_reason[reason] = by_reason.get(reason, 0) + 1
  logging.info('Predicted %d image(s) into %s; skipped %d%s.%s', len(good), out, len(skipped),
               f' {by_reason}' if skipped else '',
               f' {summary["num_uncertain"]} answered "uncertain" (top probability under '
               f'{predict_config.min_confidence:g}).' if predict_config.min_confidence else '')
  if speed:
    logging.info('Speed on this machine: batch-1 latency p50 %.2f ms, p99 %.2f ms; %.0f images/s '
                 'at batch %d.', speed['batch1_p50_ms'], speed['batch1_p99_ms'],
                 speed['throughput_images_per_s'], speed['throughput_batch_size'])
  if missing and not predict_config.allow_missing:
    raise MissingInputsError(
        f'{len(good)} prediction(s) written to {out}, but {describe_missing(missing)}; pass '
        f'--config.predict.allow_missing=True to accept missing inputs')
  return summary
