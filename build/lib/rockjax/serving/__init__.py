"""After training: a finished run as a predictor (`predictor`), and the `eval`, `predict` and
`export` modes built on it (`evaluation`, `predict`, `export`)."""
