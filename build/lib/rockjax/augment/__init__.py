"""Augmentation: the presets (one table, `presets.py`), their Albumentations (host) and jax.random
(device) implementations, mixup/CutMix inside the train step, and the `--mode=preview` figure."""
