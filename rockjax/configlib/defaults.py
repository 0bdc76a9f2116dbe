"""`base_config()`: the defaults every `configs/*.py` starts from, one documented line per field.

The lists of valid choices and the augmentation knobs are not written here: they come from the
modules that implement them (models, data, optimiser, the augmentation preset table), and
rockjax/configlib/validation.py checks values against the same lists.
"""

from __future__ import annotations

import ml_collections

from rockjax import models
from rockjax.augment import presets
from rockjax.data import folder


def base_config() -> ml_collections.ConfigDict:
  """Defaults shared by all configs; they reproduce the reference residual recipe."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.num_epochs = 60
  c.batch_size = 32  # global: split over all devices of all processes
  c.eval_batch_size = 256  # global
  c.num_devices = 0  # local devices to use; 0 means all of them
  c.learning_rate = 1e-4
  c.weight_decay = 0.0  # > 0 selects AdamW (decoupled weight decay)
  c.adam_b1 = 0.9
  c.adam_b2 = 0.999
  c.adam_eps = 1e-7  # Keras' default epsilon
  c.label_smoothing = 0.0
  c.grad_clip_norm = 0.0  # 0 disables clipping
  c.schedule = 'plateau'  # constant | warmup_cosine | plateau
  c.warmup_epochs = 0.0
  # True (the recommended recipes): a batch larger than the training set shrinks to fit it, and a
  # warmup longer than half the run is cut to half, each change logged; False: both are errors
  c.adapt_to_data = False
  c.cosine_final_fraction = 0.0  # final lr of warmup_cosine, as a fraction of learning_rate
  c.plateau = ml_collections.ConfigDict(dict(
      factor=0.5, patience=3, min_lr=1e-5, min_delta=1e-4))  # Keras ReduceLROnPlateau on val loss
  c.early_stopping_patience = 10  # epochs without a val-accuracy gain; 0 disables
  c.log_every_steps = 0  # extra within-epoch log lines; 0 means only per-epoch lines
  c.steps_per_dispatch = 1  # train steps per compiled call (lax.scan); raise it on a GPU or TPU
  c.checkpoint_every_epochs = 1
  c.ema_decay = 0.0  # > 0 (e.g. 0.99): evaluate, keep and export a moving average of the weights
  c.test_time_flip = False  # average each image's class probabilities with its mirror image's
  c.distributed = False  # True: jax.distributed.initialize() (multi-host); training/runtime.py
  c.distributed_timeout_seconds = 100  # multi-host: a silent process ends the others after this
  # Fine-tuning (rockjax/training/finetune.py): start from another run's best checkpoint.
  c.init_from = ''  # that run's workdir; '' trains from scratch
  # Top-level modules kept fixed (with init_from or model.pretrained), by name or first:last range:
  # 'ConvAct_0,ResidualStage_0' = ResidualCNN's stem and stage 0; 'stem:block_11' for
  # EfficientNetLite0's first 13; 'all': all but the head.
  c.init_freeze = ''
  c.init_lr_multiplier = 1.0  # scales the updates of the other pretrained layers (not the head)

  # The fast mode for CPUs (rockjax/training/features.py): with pretrained weights, only the head
  # trains, on the backbone's features, computed once per image (per pass) and cached in the workdir.
  c.features = ml_collections.ConfigDict(dict(
      enabled=False,
      passes=1,  # versions of each training image: 1 = as decoded; more = augmented (device preset)
      batch_size=32,  # images per call when computing features (memory grows with it)
  ))

  c.model = models.section.defaults()  # rockjax/models/section.py and the networks' modules

  c.data = ml_collections.ConfigDict()
  c.data.dir = ''  # a folder with one sub-folder per class; '' means the generated default set
  c.data.image_size = 32
  c.data.val_fraction = 0.25  # of the images outside the test split
  c.data.repeats = 1  # passes over the training images per epoch, shuffled together (reference: 10)
  c.data.test_fraction = 0.0  # > 0: a test split carved off first, never seen in training
  c.data.min_test_images = 0  # a test split smaller than this is not carved (logged); 0: always
  c.data.interpolation = 'nearest'  # the reference's resize; see data/imageio.py RESAMPLE
  c.data.aspect = 'stretch'  # stretch (reference) | center_crop
  c.data.cache_dir = ''  # '' means $ROCKJAX_CACHE_DIR or ~/.cache/rockjax
  c.data.deterministic = True  # order-preserving parallel input pipeline
  c.data.host_threads = 0  # data.where=host: tf.data threads (decoding, augmentation); 0: all cores
  c.data.where = 'host'  # host: tf.data batches | device: the decoded set resident on the devices
  c.data.device_memory_mb = 4096  # data.where=device: the most the data may take on each device
  # Image file extensions read from a folder (any letter case; gif: the first frame).
  c.data.extensions = ','.join(e.lstrip('.') for e in folder.EXTENSIONS)
  c.data.alpha_background = 255  # grey level that transparent pixels are composited onto
  c.data.allow_empty_classes = False  # True: drop class folders with no usable image (warning)
  c.data.read_workers = 0  # decoding threads; 0 means one per CPU core
  c.data.group_duplicates = True  # keep copies of a photo on one side of every split and fold
  c.data.duplicate_threshold = 4  # dHash bits (of 64) for near-duplicates; -1: exact copies only
  c.data.kfold = 0  # K > 1: stratified K-fold cross-validation (one run per fold)
  c.data.fold = -1  # with kfold: -1 runs every fold; 0..K-1 trains just that fold
  c.data.split_from = ''  # a run's workdir (k-fold: its root): reuse its saved split(s) exactly
  c.data.exclude = ''  # a file of photos (one per line, or a label_issues.csv) kept out of training
  c.data.synthetic = ml_collections.ConfigDict(dict(
      num_per_class=200, image_size=64, seed=0))  # configs/residual.py: 6.7 min on 2 cores
  # A TensorFlow Datasets image-classification set by name, not a folder (data/tfds_source.py).
  c.data.tfds = ''  # e.g. 'tf_flowers', 'cifar10:3.0.2', 'name/config'
  c.data.tfds_data_dir = ''  # where its prepared files are; '' means TFDS's default
  c.data.tfds_download = False  # True: download and prepare it when missing (needs the network)
  c.data.train_split = 'train'  # TFDS split syntax: 'train', 'train[:90%]', ...
  c.data.val_split = ''  # '' splits train_split like a folder (val_fraction, kfold, test_fraction)
  c.data.test_split = ''  # with val_split: a TFDS split to hold out as the test split
  c.data.tfds_image_key = ''  # '' finds the one Image feature
  c.data.tfds_label_key = ''  # '' finds the one ClassLabel feature
  # Streaming (data/streaming.py): a TFDS set read batch by batch instead of decoded into memory.
  c.data.in_memory = 'auto'  # auto (stream over memory_budget_mb) | true | false (stream)
  c.data.memory_budget_mb = 4096.0  # in_memory=auto: the most the decoded training images may take
  c.data.shuffle_buffer = 10000  # streaming: examples in the shuffle buffer

  c.augment = ml_collections.ConfigDict()
  c.augment.preset = 'flip_bright'  # a name in rockjax/augment/presets.py's table
  c.augment.where = 'host'  # host: Albumentations in tf.data | device: jax.random in the train step
  c.augment.mixup_alpha = 0.0  # > 0: mixup with lam ~ Beta(alpha, alpha), in the train step
  c.augment.cutmix_alpha = 0.0  # > 0: cutmix (both > 0: one of the two per step, p=0.5 each)
  for knob in presets.all_knobs():  # the presets' own knobs, documented in the table
    c.augment[knob.name] = knob.default

  c.eval = ml_collections.ConfigDict()  # --mode=eval
  c.eval.dir = ''  # a class-per-folder set to evaluate on; '' means the run's saved split
  c.eval.split = 'val'  # val | test: which saved split (test: the held-out test split, once)
  c.eval.batch_size = 256
  c.eval.num_errors_shown = 24  # most confidently wrong images in eval/most_confident_errors.png
  c.eval.num_label_issues_shown = 48  # k-fold eval: top label issues in eval/label_issues.png
  # k-fold eval: how photos are flagged (serving/label_issues.py): prune_by_noise_rate (recall
  # first) | confident_joint (fewer flags, higher precision) | predicted_neq_given (baseline)
  c.eval.label_issues_method = 'prune_by_noise_rate'
  c.eval.test_time_flip = 'run'  # run: as the run was trained | on | off: override, for this eval
  c.eval.output_dir = ''  # where eval writes its report and plots; '' means <workdir>/eval

  c.predict = ml_collections.ConfigDict()  # --mode=predict
  c.predict.batch_size = 256
  c.predict.latency_runs = 0  # > 0 (e.g. 200): also time batch-1 latency and throughput
  c.predict.output_dir = ''  # where predictions.csv goes; '' means the workdir
  c.predict.allow_missing = False  # True: named inputs that are not found do not fail the run

  c.export = ml_collections.ConfigDict()  # --mode=export (docs/deployment.md)
  c.export.formats = 'saved_model'  # comma-separated: saved_model, tflite, tflite_int8, onnx
  c.export.calibration_images = 600  # training images that calibrate tflite_int8
  c.export.report = True  # export/report.json: each format's accuracy and latency on this CPU
  c.export.latency_runs = 100  # batch-1 calls timed per format for the report; 0 skips timing
  c.export.output_dir = ''  # where the export goes; '' means <workdir>/export

  c.preview = ml_collections.ConfigDict()  # --mode=preview
  c.preview.per_class = 2
  c.preview.versions = 5
  return c
