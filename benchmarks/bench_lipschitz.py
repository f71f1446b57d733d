"""Cost of the Lipschitz penalty and of annealing it during `model.fit`.

Times `fit` steps of a small S4D classifier (embedding, S4D block, pooling,
dense head) in four set-ups: no penalty; a `LipschitzRegularization` layer
with a fixed weight; the same with `LipschitzSchedule(unit="epoch")`; and
with `LipschitzSchedule(unit="batch")`. Under JAX the per-batch schedule
writes the trainer's state back into the variables before every step, so
its overhead is the one to watch.

Usage:
    KERAS_BACKEND=jax python benchmarks/bench_lipschitz.py [--length 512]
        [--batch 16] [--channels 64] [--steps 32]

Prints a table and writes `benchmarks/results/lipschitz_<backend>.json`.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import harness  # noqa: E402
from keras_ssm.callbacks import LipschitzSchedule  # noqa: E402
from keras_ssm.layers import LipschitzRegularization  # noqa: E402
from keras_ssm.layers import S4DBlock  # noqa: E402

SETUPS = ("none", "fixed", "schedule_epoch", "schedule_batch")


def build_model(setup, length, channels, vocabulary=256):
    layers = [
        keras.Input((length,), dtype="int32"),
        keras.layers.Embedding(vocabulary, channels),
    ]
    if setup != "none":
        layers.append(LipschitzRegularization(0.1))
    layers += [
        S4DBlock(d_state=32),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(10),
    ]
    model = keras.Sequential(layers)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def seconds_per_step(setup, x, y, batch, steps, channels):
    model = build_model(setup, x.shape[1], channels)
    callbacks = []
    if setup.startswith("schedule"):
        unit = setup.split("_")[1]
        callbacks.append(LipschitzSchedule(0.1, decay=0.01, unit=unit))
    fit = dict(batch_size=batch, verbose=0, callbacks=callbacks)
    model.fit(x[: 2 * batch], y[: 2 * batch], epochs=1, **fit)  # compile
    start = time.perf_counter()
    model.fit(x[: steps * batch], y[: steps * batch], epochs=1, **fit)
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(args.steps * args.batch, args.length))
    y = rng.integers(0, 10, size=(args.steps * args.batch,))
    rows = []
    for setup in SETUPS:
        seconds = seconds_per_step(
            setup, x, y, args.batch, args.steps, args.channels
        )
        rows.append({"setup": setup, "seconds_per_step": seconds})
    for row in rows:
        row["ratio_vs_none"] = (
            row["seconds_per_step"] / rows[0]["seconds_per_step"]
        )
    harness.print_table(rows, ["setup", "seconds_per_step", "ratio_vs_none"])
    output = harness.output_path(args.output, "lipschitz")
    harness.write_json(
        output,
        {
            "benchmark": "lipschitz_fit_step",
            "length": args.length,
            "batch": args.batch,
            "channels": args.channels,
            "steps": args.steps,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
