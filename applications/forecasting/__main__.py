"""Command line: train and evaluate forecasters on ETT (Informer protocol).

Examples:

    python -m applications.forecasting --data ETTh1 --features S \
        --horizon 24 --model s4d
    python -m applications.forecasting --data ETTh1 --features S \
        --model etsmlp --lipschitz 0.01 --all-horizons --backend jax

Every run writes `result.json` (test/val MSE and MAE on the standardised
scale, the configuration, the history), `history.csv`, checkpoints and
`forecast.png` under `--output-dir` (default `runs/forecasting/<run>`).
Errors are one line (`--debug` shows the traceback). With
`--all-horizons` the table of test MSE per horizon is printed next to the
ETTh1 numbers of Data Continuity Matters (Qu et al., ICLR 2023).
"""

import sys

from applications.common import training

training.select_backend()  # before anything imports keras

from applications.forecasting.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(training.run_cli(main))
