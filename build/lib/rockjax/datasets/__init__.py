"""TensorFlow Datasets builders of rockjax (importing one registers it with TFDS)."""
