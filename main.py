"""rockjax command line: train (and, with --mode, evaluate, predict, export) rock classifiers.

    python main.py --config=configs/residual.py
    python main.py --config=configs/residual.py --config.model.dropout=0.1 --workdir=runs/d01
    python main.py --mode=export --workdir=runs/d01  # after training: the run's own config

The same as the `rockjax` command that `pip install .` installs; the flags and the modes are in
rockjax/command.py, the logic in rockjax/cli.py and the packages.
"""

from rockjax import command  # first rockjax import: process-wide defaults, before JAX starts

if __name__ == '__main__':
  command.run()
