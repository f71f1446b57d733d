"""
Title: Getting started with keras-ssm
Author: keras-ssm developers
Date created: 2026/11/23
Last modified: 2026/11/23
Description: S4D, ETSMLP and Mamba blocks in Keras models on any backend.
Accelerator: None
"""

"""
## Introduction

keras-ssm provides state space sequence layers for Keras 3. Each layer maps
a `(batch, length, channels)` tensor to a tensor of the same shape, so the
layers stack like any other Keras layer:

* `S4DBlock`: a diagonal linear state space model (S4D, Gu et al., 2022)
  applied as a long convolution, wrapped in norm, GELU and a GLU projection;
* `ETSMLPBlock`: an MLP around complex exponential smoothing (CES) along
  time (ETSMLP, Chu & Lin, 2024);
* `MambaBlock`: a selective state space model whose step size and
  projections depend on the input (Mamba, Gu & Dao, 2023).

In this guide we train one model of each kind on a small long-memory task,
first with `keras.Sequential` and then with the Functional API, save and
reload a model, and see how to switch between JAX, TensorFlow and PyTorch.
"""

"""
## Setup

The backend is chosen with the `KERAS_BACKEND` environment variable *before*
Keras is imported. Everything below runs unchanged on `"jax"`,
`"tensorflow"` and `"torch"`. Setting `KERAS_SSM_QUICK=1` shrinks the data
and the training so that the guide runs in seconds (that is how CI runs it).
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np

import keras_ssm

QUICK = os.environ.get("KERAS_SSM_QUICK") == "1"
OUTPUT_DIR = os.environ.get("KERAS_SSM_GUIDE_OUTPUT", "guide_outputs")
os.makedirs(OUTPUT_DIR, exist_ok=True)
keras.utils.set_random_seed(42)
print("Keras", keras.__version__, "on", keras.backend.backend())

"""
## A task that needs long memory

Each sequence is white noise, except for a short signed pulse hidden in its
first tenth. The label says whether the pulse was positive. A model has to
carry that bit across the rest of the sequence, which is what state space
models are good at.
"""

LENGTH = 64 if QUICK else 512
CHANNELS = 4
NUM_TRAIN = 128 if QUICK else 2048
NUM_VAL = 64 if QUICK else 512
EPOCHS = 1 if QUICK else 10


def make_pulse_data(num_examples, seed):
    rng = np.random.default_rng(seed)
    x = 0.5 * rng.standard_normal((num_examples, LENGTH, CHANNELS))
    labels = rng.integers(0, 2, num_examples)
    starts = rng.integers(0, LENGTH // 10, num_examples)
    for i, (start, label) in enumerate(zip(starts, labels)):
        x[i, start : start + 3, :] += 2.0 if label else -2.0
    return x.astype("float32"), labels.astype("int32")


x_train, y_train = make_pulse_data(NUM_TRAIN, seed=0)
x_val, y_val = make_pulse_data(NUM_VAL, seed=1)
print("train:", x_train.shape, "validation:", x_val.shape)

"""
## Three blocks in `keras.Sequential`

The width (`hidden_dim`) is inferred from the input's last axis, so a model is
an input projection, a few blocks and a classification head. All three
blocks are causal: the output at step t only sees inputs up to t, so we
read the prediction from the last step.
"""

D_MODEL = 16 if QUICK else 32
DEPTH = 1 if QUICK else 2


def sequential_model(block_factory, name):
    return keras.Sequential(
        [
            keras.Input((LENGTH, CHANNELS)),
            keras.layers.Dense(D_MODEL),
            *[block_factory() for _ in range(DEPTH)],
            keras.layers.Lambda(lambda h: h[:, -1], name="last_step"),
            keras.layers.Dense(2),
        ],
        name=name,
    )


blocks = {
    "s4d": lambda: keras_ssm.layers.S4DBlock(d_state=32),
    "etsmlp": lambda: keras_ssm.layers.ETSMLPBlock(
        intermediate_dim=2 * D_MODEL
    ),
    "mamba": lambda: keras_ssm.layers.MambaBlock(d_state=8, expand=2),
}

histories = {}
for name, factory in blocks.items():
    model = sequential_model(factory, name)
    model.compile(
        optimizer=keras_ssm.optimizers.ssm_adamw(3e-3, weight_decay=0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=EPOCHS,
        verbose=0,
    )
    histories[name] = history.history
    print(
        f"{name:>7}: {model.count_params():6d} parameters, "
        f"val accuracy {history.history['val_accuracy'][-1]:.3f}"
    )

"""
`ssm_adamw` is AdamW that leaves the state space parameters (step sizes,
poles) out of weight decay and can give them their own learning rate, as the
S4 reference does.

## The Functional API

The same blocks work in Functional models. Here an S4D block and a Mamba
block share the input; their features are concatenated and pooled. Masking
works as in any Keras model: padded steps are zeroed before the SSM mixes
them in.
"""

inputs = keras.Input((LENGTH, CHANNELS), name="signal")
hidden = keras.layers.Dense(D_MODEL, name="embed")(inputs)
s4d_features = keras_ssm.layers.S4DBlock(d_state=32, name="s4d")(hidden)
mamba_features = keras_ssm.layers.MambaBlock(d_state=8, name="mamba")(hidden)
features = keras.layers.Concatenate()([s4d_features, mamba_features])
logits = keras.layers.Dense(2, name="head")(features[:, -1])
functional = keras.Model(inputs, logits, name="s4d_and_mamba")
functional.compile(
    optimizer=keras_ssm.optimizers.ssm_adamw(3e-3, weight_decay=0.01),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
functional.fit(
    x_train, y_train, validation_data=(x_val, y_val), epochs=EPOCHS, verbose=2
)
functional.summary()

"""
## Saving, reloading and switching backends

Every layer is registered for serialization, so `.keras` files round-trip.
The weights are plain arrays: a model saved under one backend loads under
another. To switch backend, restart Python with a different
`KERAS_BACKEND` (for example `KERAS_BACKEND=torch python my_script.py`);
the code above does not change.
"""

path = os.path.join(OUTPUT_DIR, "s4d_and_mamba.keras")
functional.save(path)
restored = keras.saving.load_model(path)
difference = np.max(
    np.abs(
        keras.ops.convert_to_numpy(functional(x_val[:4]))
        - keras.ops.convert_to_numpy(restored(x_val[:4]))
    )
)
print("max difference after reload:", difference)

"""
Learning curves, written as a PNG file next to the saved model:
"""

import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, history in histories.items():
    ax.plot(history["val_accuracy"], marker="o", label=name)
ax.set_xlabel("epoch")
ax.set_ylabel("validation accuracy")
ax.set_title(f"Pulse sign after {LENGTH} steps")
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(OUTPUT_DIR, "getting_started_accuracy.png"))
plt.show()

"""
## Conclusion

* SSM blocks take and return `(batch, length, channels)`; the width comes
  from the input.
* They work in `Sequential` and Functional models, with `fit()`, masking,
  mixed precision and `.keras` saving, on JAX, TensorFlow and PyTorch.
* Next: the Long Range Arena guide trains on ListOps, the forecasting guide
  on ETTh1, the frequency-bias guide looks inside the layers, and the
  recurrent-inference guide runs them one step at a time.
"""
