"""One process of the multi-process data-parallel tests.

Run by `tests/test_multiprocess.py` under torchrun (PyTorch) or as one of
several plain processes (JAX, TensorFlow), and imported by it for the
one-process reference. Trains a tiny S4D classifier with the keras-ssm
optimizer and writes `rank<index>.json` (per-epoch losses, final weights)
into the output directory.
"""

import argparse
import json
import os
import sys

NUM_SAMPLES, LENGTH, CHANNELS, CLASSES = 32, 12, 4, 3
BATCH_SIZE, EPOCHS = 16, 2


def data():
    import numpy as np

    rng = np.random.RandomState(0)
    x = rng.randn(NUM_SAMPLES, LENGTH, CHANNELS).astype("float32")
    y = rng.randint(0, CLASSES, size=(NUM_SAMPLES,)).astype("int32")
    return x, y


def train(parallel=False, callbacks=()):
    """Builds, compiles and fits the model; returns (losses, weights)."""
    import keras

    import keras_ssm
    from keras_ssm import distribute

    keras.utils.set_random_seed(7)
    x, y = data()
    with distribute.data_parallel_scope(enabled=parallel):
        model = keras.Sequential(
            [
                keras.Input((LENGTH, CHANNELS)),
                keras_ssm.layers.S4DBlock(d_state=8),
                keras.layers.GlobalAveragePooling1D(),
                keras.layers.Dense(CLASSES),
            ]
        )
        model.compile(
            optimizer=keras_ssm.optimizers.ssm_adamw(0.05, 0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        distribute.prepare_model(model)
        history = model.fit(
            x,
            y,
            batch_size=BATCH_SIZE,
            epochs=EPOCHS,
            shuffle=False,
            verbose=0,
            callbacks=list(callbacks),
        )
    weights = [keras.ops.convert_to_numpy(w).tolist() for w in model.weights]
    return history.history["loss"], weights


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument(
        "--die-rank",
        type=int,
        default=None,
        help="This process exits abruptly when the second epoch starts.",
    )
    args = parser.parse_args(argv)

    import keras

    from keras_ssm import distribute

    distribute.initialize(timeout_seconds=20)
    index = distribute.process_index()

    class Die(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1 and index == args.die_rank:
                sys.stdout.flush()
                os._exit(3)

    losses, weights = train(parallel=True, callbacks=[Die()])
    path = os.path.join(args.output_dir, f"rank{index}.json")
    with open(path, "w") as f:
        json.dump({"losses": losses, "weights": weights}, f)


if __name__ == "__main__":
    main()
