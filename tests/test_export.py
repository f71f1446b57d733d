"""Every layer runs with a sequence length unknown until run time.

`model.export()` (a TensorFlow SavedModel) traces the model with a dynamic
length: on TensorFlow the length is `None`, on JAX (jax2tf) it is a symbolic
dimension that refuses `int()`, comparisons and constant FFT lengths. The
served model must compute what the Keras model computes at any length.
"""

import keras
import numpy as np
import pytest

from keras_ssm import layers
from tests.helpers import to_numpy

CHANNELS = 4
BACKEND = keras.backend.backend()

needs_saved_model_export = pytest.mark.skipif(
    BACKEND == "torch",
    reason="Keras 3.15's SavedModel export from PyTorch fails with a dynamic "
    "length even for a plain Dense model (torch.export: 'mismatch between "
    "the structure of inputs and dynamic_shapes').",
)


def _layer_factories():
    return {
        "S4D": lambda: layers.S4D(d_state=4),
        "S4D-bidirectional": lambda: layers.S4D(d_state=4, bidirectional=True),
        "S4DBlock": lambda: layers.S4DBlock(d_state=4),
        "CES": lambda: layers.CES(),
        "CES-bidirectional": lambda: layers.CES(bidirectional=True),
        "ETSMLPBlock": lambda: layers.ETSMLPBlock(8),
        "SelectiveSSM": lambda: layers.SelectiveSSM(d_state=4),
        "MambaBlock": lambda: layers.MambaBlock(d_state=4, expand=1),
        "MambaBlock-bidirectional": lambda: layers.MambaBlock(
            d_state=4, expand=1, bidirectional=True
        ),
        "LipschitzRegularization": lambda: layers.LipschitzRegularization(
            weight=0.1, normalize=True
        ),
    }


def _inputs(length, seed=0):
    rng = np.random.default_rng(seed + length)
    return rng.normal(size=(2, length, CHANNELS)).astype("float32")


@needs_saved_model_export
def test_export_with_dynamic_length_serves_any_length(tmp_path):
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, CHANNELS))
    x = layers.S4DBlock(d_state=4)(inputs)
    x = layers.LipschitzRegularization(weight=0.1)(x)
    x = layers.ETSMLPBlock(8)(x)
    x = layers.MambaBlock(d_state=4, expand=1)(x)
    model = keras.Model(inputs, x)
    path = str(tmp_path / "served")
    model.export(path, format="tf_saved_model", verbose=False)
    served = tf.saved_model.load(path)
    for length in (5, 13):
        x = _inputs(length)
        np.testing.assert_allclose(
            served.serve(x).numpy(),
            to_numpy(model(x)),
            rtol=1e-4,
            atol=1e-4,
        )


@pytest.mark.parametrize("name", sorted(_layer_factories()))
def test_call_traces_with_a_symbolic_length(name):
    """No host conversion, int() of a length or constant FFT size in call.

    JAX: `jax.export` with symbolic (batch, length) shapes, which raises on
    any Python use of the length and on any host conversion of a tracer.
    TensorFlow: a `tf.function` with an unknown length, run at two lengths.
    """
    layer = _layer_factories()[name]()
    layer.build((None, None, CHANNELS))
    lengths = (5, 9)
    if BACKEND == "jax":
        import jax
        from jax import export

        trainable = [v.value for v in layer.trainable_variables]
        others = [v.value for v in layer.non_trainable_variables]

        def call(x):
            outputs, _ = layer.stateless_call(trainable, others, x)
            return outputs

        batch, length = export.symbolic_shape("b, l")
        spec = jax.ShapeDtypeStruct((batch, length, CHANNELS), "float32")
        exported = export.export(jax.jit(call))(spec)
        for n in lengths:
            np.testing.assert_allclose(
                np.asarray(exported.call(_inputs(n))),
                to_numpy(layer(_inputs(n))),
                rtol=1e-4,
                atol=1e-5,
            )
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec((None, None, CHANNELS), "float32")
        call = tf.function(lambda x: layer(x), input_signature=[spec])
        for n in lengths:
            np.testing.assert_allclose(
                to_numpy(call(_inputs(n))),
                to_numpy(layer(_inputs(n))),
                rtol=1e-4,
                atol=1e-5,
            )
    else:
        pytest.skip(
            "PyTorch runs eagerly: a length is always a concrete int there."
        )


def test_fft_conv_scan_path_matches_the_fft():
    """The path used for symbolic lengths computes the same convolution."""
    from keras_ssm.ops.fft_conv import _direct_conv
    from keras_ssm.ops.fft_conv import fft_conv

    rng = np.random.default_rng(0)
    u = rng.normal(size=(2, 11, 3)).astype("float32")
    k = rng.normal(size=(3, 11)).astype("float32")
    kb = rng.normal(size=(3, 11)).astype("float32")
    for backward in (None, kb):
        np.testing.assert_allclose(
            to_numpy(_direct_conv(u, k, backward, None)),
            to_numpy(fft_conv(u, k, backward)),
            rtol=1e-4,
            atol=1e-4,
        )
    with pytest.raises(ValueError, match="spectral_filter"):
        _direct_conv(u, k, None, lambda n: 1.0)
