"""Helpers shared by the layer tests: NumPy views, save/load checks."""

import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

BACKENDS = ("jax", "tensorflow", "torch")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def assert_refuses_bad_shapes(
    layer, channels, rank_match="rank", step_match=None
):
    """Badly shaped inputs raise errors that say what the layer accepts.

    An unbuilt `layer` first refuses rank-2 inputs (an error matching
    `rank_match`) and is then built for `channels` features. The built
    layer refuses any other width in `call`, and in `step` when
    `step_match` (the expected error) is given.
    """
    if not layer.built:
        with pytest.raises(ValueError, match=rank_match):
            layer(np.zeros((2, 5), "float32"))
        layer(np.zeros((2, 6, channels), "float32"))
    wrong = channels + 1
    expected = f"axis -1 of input shape to have value {channels}"
    with pytest.raises(ValueError, match=expected):
        layer(np.zeros((2, 6, wrong), "float32"))
    if step_match is not None:
        state = layer.get_initial_state(2)
        with pytest.raises(ValueError, match=step_match):
            layer.step(np.zeros((2, wrong), "float32"), state)


def assert_padding_is_ignored(layer, inputs, valid, atol=1e-4):
    """Under a mask, padding leaks nowhere.

    Example `i` keeps its first `valid[i]` steps (`valid` may be one length
    for all); the padded steps hold garbage (100.0). The masked call's kept
    outputs equal those of the unpadded examples, and the rest are zero.
    Returns the padded inputs, the mask and the masked outputs.
    """
    batch, length = inputs.shape[:2]
    lengths = np.broadcast_to(valid, (batch,))
    mask = np.arange(length)[None] < lengths[:, None]
    padded = np.where(mask[..., None], inputs, 100.0).astype(inputs.dtype)
    y_masked = to_numpy(layer(padded, mask=mask))
    for n in np.unique(lengths):
        rows = lengths == n
        np.testing.assert_allclose(
            y_masked[rows, :n],
            to_numpy(layer(inputs[rows, :n])),
            rtol=1e-4,
            atol=atol,
        )
    np.testing.assert_array_equal(y_masked[~mask], 0.0)
    return padded, mask, y_masked


def assert_out_proj_scaled_by_depth(make_block):
    """`make_block(num_layers=4)` starts `out_proj` at 1/sqrt(4) of its
    size; every other weight is the same as with the default. Returns the
    deep block."""
    keras.utils.set_random_seed(3)
    plain = make_block()
    keras.utils.set_random_seed(3)
    deep = make_block(num_layers=4)
    for w_plain, w_deep in zip(plain.weights, deep.weights):
        factor = 0.5 if w_plain.path.endswith("out_proj/kernel") else 1.0
        np.testing.assert_allclose(
            to_numpy(w_deep), to_numpy(w_plain) * factor, rtol=1e-6
        )
    return deep


def assert_mixed_precision_close(
    reference, layer, policy, inputs, rtol=0.0, atol=None
):
    """`layer`, under the mixed `policy`, with the float32 `reference`'s
    weights, outputs the policy's compute dtype and stays close to the
    reference (`atol` defaults to 5% of the largest reference output).

    Returns the layer's outputs.
    """
    expected = to_numpy(reference(inputs))
    if not layer.built:
        layer.build(inputs.shape)
    layer.set_weights(reference.get_weights())
    y = layer(inputs)
    assert keras.backend.standardize_dtype(y.dtype) == policy.split("_")[1]
    if atol is None:
        atol = 0.05 * np.abs(expected).max()
    np.testing.assert_allclose(to_numpy(y), expected, rtol=rtol, atol=atol)
    return y


def run_python(args, env, timeout=600):
    """Runs `python *args` in the repository root; it must succeed.

    Returns the completed process (text output captured).
    """
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def rotation():
    """This CI run's rotation: `KERAS_SSM_ROTATION`, else the UTC day number."""
    value = os.environ.get("KERAS_SSM_ROTATION")
    return int(value) if value else int(time.time() // 86400)


def rotated(offset, reason="slow"):
    """Runs a slow end-to-end test under one backend per CI run, in rotation.

    The test runs under `BACKENDS[(offset + rotation()) % 3]`, so every
    backend runs it within three days (three CI runs a day apart), while
    the fast tests of the same code run under all three every time.
    `KERAS_SSM_ALL_BACKENDS=1` runs it under every backend.

    Args:
        offset: spreads the rotated tests over the backends of one run.
        reason: what makes the test slow (shown in the skip message).
    """
    chosen = BACKENDS[(offset + rotation()) % len(BACKENDS)]
    current = os.environ.get("KERAS_BACKEND", "tensorflow")
    run_all = os.environ.get("KERAS_SSM_ALL_BACKENDS") == "1" or (
        # The name the experiments' rotation was first documented under.
        os.environ.get("KERAS_SSM_EXPERIMENTS_ALL_BACKENDS") == "1"
    )
    return pytest.mark.skipif(
        not run_all and current != chosen,
        reason=f"{reason}: this run's rotation gives it to {chosen}",
    )


def other_backend():
    """The next backend in the cycle jax -> tensorflow -> torch -> jax."""
    current = keras.backend.backend()
    return BACKENDS[(BACKENDS.index(current) + 1) % len(BACKENDS)]


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


def induction_heads_data(n, length, vocab, seed):
    """Random tokens 1..vocab; a marker at a random position and at the end.

    The target is the token that followed the first marker (chance level
    1 / vocab): the model must select and keep one token among noise.
    """
    rng = np.random.default_rng(seed)
    marker = vocab + 1
    x = rng.integers(1, vocab + 1, (n, length))
    position = rng.integers(0, length - 3, n)
    x[np.arange(n), position] = marker
    y = x[np.arange(n), position + 1] - 1
    x[:, -1] = marker
    return x.astype("int32"), y.astype("int32")


class StopAtAccuracy(keras.callbacks.Callback):
    """Stops training once `val_accuracy` reaches `target`."""

    def __init__(self, target):
        super().__init__()
        self.target = target

    def on_epoch_end(self, epoch, logs=None):
        if logs["val_accuracy"] >= self.target:
            self.model.stop_training = True


def fit_induction_heads(
    make_blocks, vocab, length, width, learning_rate, num_train, epochs
):
    """Trains `Embedding -> blocks -> RMSNorm -> Dense` on induction heads.

    `make_blocks()` returns the blocks (made after the embedding, so the
    seeded initialisations follow the layer order). The last step's
    features predict the answer; training stops once the validation
    accuracy reaches 0.9. Returns the history dictionary.
    """
    x, y = induction_heads_data(num_train, length, vocab, seed=0)
    x_val, y_val = induction_heads_data(256, length, vocab, seed=1)
    inputs = keras.Input((length,), dtype="int32")
    h = keras.layers.Embedding(vocab + 2, width)(inputs)
    for block in make_blocks():
        h = block(h)
    h = keras.layers.RMSNormalization()(h)
    model = keras.Model(inputs, keras.layers.Dense(vocab)(h[:, -1]))
    model.compile(
        keras.optimizers.Adam(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(
        x,
        y,
        batch_size=64,
        epochs=epochs,
        validation_data=(x_val, y_val),
        callbacks=[StopAtAccuracy(0.9)],
        verbose=0,
    )
    return history.history
