"""Training: the train state (`state`), the pure pmapped steps (`steps`), optimiser and schedules
(`optim`), checkpoints (`checkpointing`), devices and processes (`runtime`), the workdir
(`workdir`), the epoch loop (`loop`), its record and monitors (`history`, `monitoring`), and k-fold
cross-validation (`crossval`)."""
