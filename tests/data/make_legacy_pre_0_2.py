"""Writes `legacy_pre_0_2.keras` and its inputs/outputs (run once, on JAX).

The model holds every residual block of keras-ssm as it was just before
0.2.0 (the `ResidualBlock` redesign) in the variants that carry different
weights or code paths: pre- and post-norm, layer/batch/rms norms, causal and
bidirectional, Mamba-2 with two groups, and the classifier and forecaster
task models on top of `SSMBackbone`. The test loads these files under every
backend and compares the outputs.

    KERAS_BACKEND=jax python tests/data/make_legacy_pre_0_2.py
"""

import os

import keras
import numpy as np

import keras_ssm

HERE = os.path.dirname(os.path.abspath(__file__))


def blocks_model():
    layers = keras_ssm.layers
    inputs = keras.Input((12, 8))
    x = layers.S4DBlock(d_state=4, norm="batch", prenorm=False)(inputs)
    x = layers.S4DBlock(d_state=4, bidirectional=True, dropout=0.1)(x)
    x = layers.ETSMLPBlock(intermediate_dim=12)(x)
    x = layers.ETSMLPGate(intermediate_dim=12, norm="rms")(x)
    x = layers.MambaBlock(d_state=4, expand=2, num_layers=2)(x)
    x = layers.MambaBlock(d_state=4, bidirectional=True, prenorm=False)(x)
    x = layers.Mamba2Block(d_state=4, headdim=4, ngroups=2)(x)
    x = layers.Mamba2Block(
        d_state=4, headdim=8, bidirectional=True, norm="layer"
    )(x)
    model = keras.Model(inputs, x)
    model.compile(optimizer=keras_ssm.optimizers.ssm_adamw(1e-3), loss="mse")
    return model


def main():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    arrays = {}
    model = blocks_model()
    # One training step gives the batch norm statistics non-default values.
    x = rng.normal(size=(3, 12, 8)).astype("float32")
    model.fit(x, rng.normal(size=(3, 12, 8)).astype("float32"), verbose=0)
    arrays["blocks_inputs"] = x
    arrays["blocks_outputs"] = np.asarray(model(x, training=False))
    model.save(os.path.join(HERE, "legacy_pre_0_2_blocks.keras"))

    classifier = keras_ssm.models.SSMClassifier(
        keras_ssm.models.SSMBackbone(
            block_type="s4d",
            num_layers=2,
            hidden_dim=8,
            vocabulary_size=11,
            d_state=4,
        ),
        num_classes=3,
    )
    tokens = rng.integers(1, 11, size=(2, 10)).astype("int32")
    tokens[1, 7:] = 0  # padding
    arrays["classifier_inputs"] = tokens
    arrays["classifier_outputs"] = np.asarray(classifier(tokens))
    classifier.save(os.path.join(HERE, "legacy_pre_0_2_classifier.keras"))

    forecaster = keras_ssm.models.SSMForecaster(
        keras_ssm.models.SSMBackbone(
            block_type="mamba2",
            num_layers=1,
            hidden_dim=8,
            input_features=2,
            d_state=4,
            block_kwargs={"headdim": 4},
        ),
        input_size=16,
        horizon=5,
        target_columns=(0, 1),
    )
    series = rng.normal(size=(2, 16, 2)).astype("float32")
    arrays["forecaster_inputs"] = series
    arrays["forecaster_outputs"] = np.asarray(forecaster(series))
    forecaster.save(os.path.join(HERE, "legacy_pre_0_2_forecaster.keras"))
    np.savez(os.path.join(HERE, "legacy_pre_0_2_io.npz"), **arrays)


if __name__ == "__main__":
    main()
