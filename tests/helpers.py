"""Helpers shared by the layer tests: NumPy views, save/load checks."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np

BACKENDS = ("jax", "tensorflow", "torch")


def to_numpy(x):
    """Any backend tensor (or pair of tensors) to float64 NumPy."""
    if isinstance(x, (tuple, list)):
        return type(x)(to_numpy(v) for v in x)
    if isinstance(x, keras.Variable):
        x = x.value
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def run_steps(layer, inputs):
    """Runs `layer.step` over the time axis of `inputs`; returns (B, L, C)."""
    state = layer.get_initial_state(inputs.shape[0])
    outputs = []
    for t in range(inputs.shape[1]):
        y_t, state = layer.step(inputs[:, t], state)
        outputs.append(to_numpy(y_t))
    return np.stack(outputs, axis=1)


def assert_save_load_roundtrip(model, inputs, tmp_path):
    """`.keras` round trip: the reloaded model gives identical outputs."""
    path = os.path.join(str(tmp_path), "model.keras")
    expected = to_numpy(model(inputs))
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        to_numpy(restored(inputs)), expected, rtol=1e-6, atol=1e-6
    )
    return restored


def other_backend():
    """The next backend in the cycle jax -> tensorflow -> torch -> jax."""
    current = keras.backend.backend()
    return BACKENDS[(BACKENDS.index(current) + 1) % len(BACKENDS)]


def assert_cross_backend_weights(build_model_source, inputs, tmp_path):
    """Weights saved here load under another backend with equal outputs.

    Args:
        build_model_source: Python source defining `build_model()` that
            returns the (unbuilt-weights) model; it runs in both processes.
        inputs: float32 NumPy inputs.
        tmp_path: pytest temporary directory.
    """
    namespace = {}
    exec(textwrap.dedent(build_model_source), namespace)
    model = namespace["build_model"]()
    expected = to_numpy(model(inputs))
    weights = os.path.join(str(tmp_path), "model.weights.h5")
    data = os.path.join(str(tmp_path), "io.npz")
    model.save_weights(weights)
    np.savez(data, inputs=inputs, expected=expected)
    script = textwrap.dedent(build_model_source) + textwrap.dedent(
        f"""
        import json
        import numpy as np
        import keras
        data = np.load({data!r})
        model = build_model()
        model(data["inputs"])
        model.load_weights({weights!r})
        out = keras.ops.convert_to_numpy(model(data["inputs"]))
        err = float(np.max(np.abs(out - data["expected"])))
        print(json.dumps({{"max_abs_error": err}}))
        """
    )
    env = dict(os.environ, KERAS_BACKEND=other_backend())
    prelude = "import torch\n"  # torch before tensorflow (segfault otherwise)
    result = subprocess.run(
        [sys.executable, "-c", prelude + script],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["max_abs_error"] < 1e-5, report


def layer_gradients(layer, inputs, **call_kwargs):
    """Gradients of mean(layer(inputs)^2) w.r.t. the trainable weights.

    Returns a list of float64 NumPy arrays, one per trainable variable.
    """
    backend = keras.backend.backend()
    layer(inputs, **call_kwargs)  # build
    variables = layer.trainable_variables
    if backend == "jax":
        import jax

        non_trainable = [v.value for v in layer.non_trainable_variables]

        def loss_fn(values):
            y, _ = layer.stateless_call(
                values, non_trainable, inputs, **call_kwargs
            )
            return (y.astype("float32") ** 2).mean()

        grads = jax.grad(loss_fn)([v.value for v in variables])
    elif backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            y = layer(inputs, **call_kwargs)
            loss = tf.reduce_mean(tf.square(tf.cast(y, "float32")))
        grads = tape.gradient(loss, [v.value for v in variables])
    else:
        import torch

        for v in variables:
            v.value.grad = None
        y = layer(torch.as_tensor(inputs), **call_kwargs)
        (y.float() ** 2).mean().backward()
        grads = [v.value.grad for v in variables]
    return [to_numpy(g) for g in grads]
