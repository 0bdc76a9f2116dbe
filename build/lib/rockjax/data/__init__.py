"""Data: reading photo folders (`folder`, `imageio`), duplicates (`dedup`), splits and folds
(`splits`), the generated default set (`synthetic`), what a run trains and validates on (`dataset`),
and the batches fed to the steps (`batching`, and the tf.data host pipeline in `pipeline`)."""
