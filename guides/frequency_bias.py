"""
Title: Data continuity and frequency bias of state space models
Author: keras-ssm developers
Date created: 2026/11/23
Last modified: 2026/11/23
Description: Transfer functions, the Sobolev filter and continuity checks.
Accelerator: None
"""

"""
## Introduction

A convolutional SSM layer such as S4D is a linear time-invariant filter, so
it is fully described by its frequency response H(f). Two observations about
that response guide how SSMs are used:

* **Frequency bias** ("Tuning Frequency Bias of State Space Models", Yu et
  al.): at the usual initialisation the modes of A sit at low frequencies,
  so the layer learns low-frequency content first. Two knobs move that
  bias: `freq_scale` scales the imaginary parts of A at initialisation, and
  the Sobolev filter (1 + j/J)^beta (`sobolev_order=beta`) reweights the
  spectrum inside the FFT convolution (beta > 0 boosts high frequencies,
  beta < 0 damps them).
* **Data continuity** ("Data Continuity Matters", Qu et al.): SSMs model
  continuous-time systems, so they do best on smooth inputs, and a model
  that is a discretised continuous system gives outputs that converge when
  the same signal is sampled more finely.

keras-ssm measures both: `keras_ssm.analysis.transfer_function` returns
H(f) of a built layer, `model_continuity` measures convergence under
temporal refinement, and `task_continuity` scores how smooth a data set is.
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
from keras_ssm.analysis import model_continuity
from keras_ssm.analysis import spectral_centroid
from keras_ssm.analysis import task_continuity
from keras_ssm.analysis import transfer_function

QUICK = os.environ.get("KERAS_SSM_QUICK") == "1"
OUTPUT_DIR = os.environ.get("KERAS_SSM_GUIDE_OUTPUT", "guide_outputs")
os.makedirs(OUTPUT_DIR, exist_ok=True)
keras.utils.set_random_seed(0)
CHANNELS = 8
NUM_POINTS = 129 if QUICK else 513

"""
## Transfer functions at initialisation

We build S4D layers that differ only in `freq_scale` or `sobolev_order`
and compare the magnitude of their responses, averaged over channels. The
spectral centroid (energy-weighted mean frequency) summarises each curve
in one number.
"""

variants = {
    "S4D-Lin": dict(),
    "freq_scale=0.1": dict(freq_scale=0.1),
    "freq_scale=10": dict(freq_scale=10.0),
    "sobolev_order=-1": dict(sobolev_order=-1.0),
    "sobolev_order=+1": dict(sobolev_order=1.0),
}
responses = {}
for label, kwargs in variants.items():
    keras.utils.set_random_seed(0)  # same dt and C draws for every variant
    layer = keras_ssm.layers.S4D(d_state=32, **kwargs)
    layer.build((None, None, CHANNELS))
    freqs, response = transfer_function(layer, NUM_POINTS)
    responses[label] = np.abs(response).mean(axis=0)
    centroid = spectral_centroid(response, freqs).mean()
    print(f"{label:>18}: spectral centroid {centroid:.4f} cycles/sample")

fig, ax = plt.subplots(figsize=(6.5, 4))
for label, magnitude in responses.items():
    ax.loglog(freqs[1:], magnitude[1:], label=label)
ax.set_xlabel("frequency (cycles per sample)")
ax.set_ylabel("mean |H(f)|")
ax.set_title("S4D frequency responses at initialisation")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(os.path.join(OUTPUT_DIR, "frequency_bias_spectra.png"))
plt.show()

"""
Larger `freq_scale` spreads the modes to higher frequencies; a positive
Sobolev order lifts the high end of the spectrum, a negative one lowers it.

## Learning a high-frequency target

Does the bias matter in training? We ask S4D to reproduce a random filter
whose energy sits at high frequencies, and record the training loss with a
low-frequency and a high-frequency setting.
"""

LENGTH = 128 if QUICK else 512
EPOCHS = 2 if QUICK else 20
rng = np.random.default_rng(0)
x = rng.standard_normal((64 if QUICK else 256, LENGTH, 1)).astype("float32")
# Target: x filtered by a decaying oscillation at 0.35 cycles per sample.
taps = np.exp(-np.arange(32) / 8.0) * np.cos(2 * np.pi * 0.35 * np.arange(32))
y = np.stack([np.convolve(row[:, 0], taps)[:LENGTH] for row in x], axis=0)[
    ..., None
].astype("float32")


def fit_filter(**s4d_kwargs):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((LENGTH, 1))
    outputs = keras_ssm.layers.S4D(d_state=32, **s4d_kwargs)(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras_ssm.optimizers.ssm_adamw(1e-2, weight_decay=0.0),
        loss="mse",
    )
    history = model.fit(
        x,
        y,
        validation_split=0.25,
        batch_size=16,
        epochs=EPOCHS,
        verbose=0,
    )
    return history.history["val_loss"]


curves = {
    "freq_scale=0.1": fit_filter(freq_scale=0.1),
    "sobolev_order=+1": fit_filter(sobolev_order=1.0),
}
if not QUICK:
    curves["S4D-Lin"] = fit_filter()
for label, losses in curves.items():
    print(f"{label:>18}: final validation MSE {losses[-1]:.4f}")

"""
## Continuity under temporal refinement

`model_continuity` feeds the same continuous signal sampled at steps tau,
tau/2, tau/4, ... and divides every `dt` of the model by the refinement, so
each run describes the same continuous-time system. For S4D, a discretised
linear ODE, the outputs converge as the grid gets finer, and the relative
error is the same at every amplitude (linearity). A selective SSM
(`SelectiveSSM`, Mamba's core) chooses its step from the input, so its
error depends on the amplitude.
"""

fine = 64 if QUICK else 512
t = np.linspace(0, 4, fine, endpoint=False)
signal = (
    np.sin(2 * np.pi * t)[None, :, None]
    + 0.5 * np.cos(2 * np.pi * 3 * t)[None, :, None]
)
signal = np.repeat(signal, CHANNELS, axis=-1).astype("float32")
amplitudes = (0.1, 1.0, 10.0)
results = {
    "S4D": model_continuity(
        keras_ssm.layers.S4D(d_state=16), signal, amplitudes=amplitudes
    ),
    "SelectiveSSM": model_continuity(
        keras_ssm.layers.SelectiveSSM(d_state=8), signal, amplitudes=amplitudes
    ),
}

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
for ax, (name, result) in zip(axes, results.items()):
    refinements = result["refinements"][:-1]  # the last one is the reference
    for amplitude, errors in zip(result["amplitudes"], result["rel_rmse"]):
        ax.loglog(refinements, errors[:-1], marker="o", label=f"x{amplitude}")
    ax.set_title(name)
    ax.set_xlabel("refinement r (step tau / r)")
axes[0].set_ylabel("relative RMS error vs finest")
axes[1].legend(title="amplitude")
fig.tight_layout()
fig.savefig(os.path.join(OUTPUT_DIR, "frequency_bias_continuity.png"))
plt.show()

"""
## How continuous is a data set?

`task_continuity` standardises each channel and returns one minus half the
mean squared step-to-step jump: about 1 for smooth series, about 0 for
independent tokens. It tells you whether to expect SSMs to shine (smooth
data) or to add the Lipschitz regularizer to smooth an embedding (discrete
data such as ListOps tokens; see the forecasting guide).
"""

tokens = rng.integers(0, 17, (16, 512))
smooth = np.cumsum(rng.standard_normal((16, 512)), axis=1)
print("random tokens :", round(task_continuity(tokens), 3))
print("random walk   :", round(task_continuity(smooth), 3))
print("sine wave     :", round(task_continuity(signal[..., 0]), 3))

"""
## Conclusion

* `transfer_function(layer, num_points)` shows what a trained or freshly
  built S4D/CES layer passes; `freq_scale` and `sobolev_order` move its
  frequency bias.
* `model_continuity` checks that a model is a consistent discretisation of
  a continuous system; linear SSMs converge at every amplitude.
* `task_continuity` scores the data; discrete data is where the Lipschitz
  regularizer helps SSMs.
"""
