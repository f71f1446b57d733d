"""
Title: Recurrent inference: streaming and autoregressive generation
Author: keras-ssm developers
Date created: 2026/11/23
Last modified: 2026/11/23
Description: Train in parallel, then run the same weights one step at a time.
Accelerator: None
"""

"""
## Introduction

A linear state space model has two equivalent forms. For training it runs
over the whole sequence at once: S4D as a long convolution (FFT), Mamba as
a parallel scan. For inference it is a recurrence with a fixed-size state:

    h[t] = A h[t-1] + B x[t],    y[t] = C h[t] + D x[t].

Every causal keras-ssm layer exposes that recurrence:

* `layer.get_initial_state(batch_size)` returns the zero state;
* `layer.step(inputs_t, state)` maps `(batch, channels)` and a state to
  `(outputs_t, new_state)`.

Each step costs the same however long the history is, which makes SSMs
suited to streaming (sensor data arriving sample by sample) and to
autoregressive generation. In this guide we train a next-step predictor,
check that stepping reproduces the parallel outputs, and generate a
continuation of a signal.
"""

"""
## Setup
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import matplotlib.pyplot as plt
import numpy as np

import keras_ssm

QUICK = os.environ.get("KERAS_SSM_QUICK") == "1"
OUTPUT_DIR = os.environ.get("KERAS_SSM_GUIDE_OUTPUT", "guide_outputs")
os.makedirs(OUTPUT_DIR, exist_ok=True)
keras.utils.set_random_seed(7)

"""
## Data: noisy sums of sines

The model sees `x[0..t]` and predicts `x[t+1]`. Each sequence mixes two
sines with random periods and phases, so the model has to infer them from
the history.
"""

LENGTH = 64 if QUICK else 256
NUM_TRAIN = 128 if QUICK else 2048
EPOCHS = 2 if QUICK else 15


def make_waves(num, length, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(length + 1)[None, :]
    periods = rng.uniform(12, 40, (num, 2, 1))
    phases = rng.uniform(0, 2 * np.pi, (num, 2, 1))
    waves = np.sin(2 * np.pi * t[:, None] / periods + phases).sum(axis=1)
    waves += 0.05 * rng.standard_normal(waves.shape)
    return waves[..., None].astype("float32")


train = make_waves(NUM_TRAIN, LENGTH, seed=0)
val = make_waves(NUM_TRAIN // 4, LENGTH, seed=1)
x_train, y_train = train[:, :-1], train[:, 1:]
x_val, y_val = val[:, :-1], val[:, 1:]

"""
## A causal next-step model (Functional API)

Only per-step layers (`Dense`) and causal SSM blocks are used, so every
layer has a streaming form. The `length` axis is `None`: the same model
accepts any length.
"""

D_MODEL = 16 if QUICK else 32
inputs = keras.Input((None, 1))
hidden = keras.layers.Dense(D_MODEL, name="embed")(inputs)
hidden = keras_ssm.layers.S4DBlock(d_state=32, name="s4d_1")(hidden)
hidden = keras_ssm.layers.S4DBlock(d_state=32, name="s4d_2")(hidden)
outputs = keras.layers.Dense(1, name="head")(hidden)
model = keras.Model(inputs, outputs)
model.compile(
    optimizer=keras_ssm.optimizers.ssm_adamw(3e-3, weight_decay=0.01),
    loss="mse",
)
model.fit(
    x_train, y_train, validation_data=(x_val, y_val), epochs=EPOCHS, verbose=2
)

"""
## Stepping through the layers

A small helper runs a stack of layers one step at a time: `Dense` layers
apply to `(batch, channels)` directly and SSM blocks call `step` with their
own state. Keeping the states in a list makes the stream resumable: save
the list, feed the next sample later.
"""

stack = [model.get_layer(n) for n in ("embed", "s4d_1", "s4d_2", "head")]


def initial_states(layers, batch_size):
    return [
        layer.get_initial_state(batch_size)
        if isinstance(layer, keras_ssm.layers.SequenceLayer)
        else None
        for layer in layers
    ]


def stream_step(layers, x_t, states):
    """One step of the stack: (batch, channels) in, (batch, 1) out."""
    new_states = []
    for layer, state in zip(layers, states):
        if state is None:
            x_t = layer(x_t)
        else:
            x_t, state = layer.step(x_t, state)
        new_states.append(state)
    return x_t, new_states


"""
The recurrent outputs match the parallel (convolution) outputs up to
float32 round-off:
"""

prompt = x_val[:2]
parallel = keras.ops.convert_to_numpy(model(prompt))
states = initial_states(stack, batch_size=2)
stepped = []
for t in range(prompt.shape[1]):
    y_t, states = stream_step(stack, prompt[:, t], states)
    stepped.append(keras.ops.convert_to_numpy(y_t))
stepped = np.stack(stepped, axis=1)
print("max |parallel - recurrent|:", np.max(np.abs(parallel - stepped)))

"""
## Autoregressive generation

Warm the state up on a prompt, then feed each prediction back as the next
input. The state has a fixed size, so step 1000 costs what step 1 costs; a
Transformer would attend over a growing cache instead.
"""

WARMUP = LENGTH // 2
HORIZON = 32 if QUICK else 128
series = make_waves(1, WARMUP + HORIZON - 1, seed=3)[:, :, 0]
states = initial_states(stack, batch_size=1)
for t in range(WARMUP):
    prediction, states = stream_step(stack, series[:, t : t + 1], states)
generated = []
for _ in range(HORIZON):
    generated.append(float(keras.ops.convert_to_numpy(prediction)[0, 0]))
    prediction, states = stream_step(stack, prediction, states)
generated = np.array(generated)
truth = series[0, WARMUP : WARMUP + HORIZON]
print("generation RMSE:", float(np.sqrt(np.mean((generated - truth) ** 2))))

fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(np.arange(WARMUP + HORIZON), series[0], color="gray", label="signal")
ax.plot(np.arange(WARMUP, WARMUP + HORIZON), generated, label="generated")
ax.axvline(WARMUP, linestyle=":", color="black")
ax.set_xlabel("step")
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(OUTPUT_DIR, "recurrent_generation.png"))
plt.show()

"""
## Streaming with Mamba and ETSMLP blocks

`MambaBlock` and `ETSMLPBlock` have the same interface; Mamba's state holds
the last `d_conv - 1` inputs of its short convolution as well as the SSM
state. Here an untrained stack of both checks the equivalence on a chunked
stream: the state carries over from one chunk to the next.
"""

mixed = [
    keras.layers.Dense(D_MODEL),
    keras_ssm.layers.MambaBlock(d_state=8),
    keras_ssm.layers.ETSMLPBlock(intermediate_dim=D_MODEL),
]
signal = x_val[:1]
full = signal
for layer in mixed:
    full = layer(full)
full = keras.ops.convert_to_numpy(full)
states = initial_states(mixed, batch_size=1)
chunks = []
for chunk in np.split(signal, 4, axis=1):  # e.g. packets from a sensor
    for t in range(chunk.shape[1]):
        y_t, states = stream_step(mixed, chunk[:, t], states)
        chunks.append(keras.ops.convert_to_numpy(y_t))
chunks = np.stack(chunks, axis=1)
print("max |parallel - chunked stream|:", np.max(np.abs(full - chunks)))

"""
## Conclusion

* Train with the parallel form (`fit()` on whole sequences), serve with
  `get_initial_state` and `step`: same weights, same outputs.
* The state is a fixed-size list of tensors per layer; store it to resume
  a stream.
* Bidirectional layers see the future and have no `step`; use causal ones
  for streaming and generation.
"""
