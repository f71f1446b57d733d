"""MambaBlock: NumPy reference, step mode, masking, saving, learning."""

import keras
import numpy as np
import pytest

from keras_ssm.layers import MambaBlock
from tests.helpers import assert_mixed_precision_close
from tests.helpers import assert_out_proj_scaled_by_depth
from tests.helpers import assert_padding_is_ignored
from tests.helpers import assert_refuses_bad_shapes
from tests.helpers import assert_save_load_roundtrip
from tests.helpers import fit_induction_heads
from tests.helpers import rotated
from tests.helpers import run_steps
from tests.helpers import to_numpy
from tests.test_selective_ssm import reference_selective_ssm


def silu(x):
    return x / (1.0 + np.exp(-x))


def reference_block(block, x):
    """x + out_proj(SSM(silu(conv(x_in))) * silu(z)), pre-RMS-norm, in f64."""
    x = np.asarray(x, np.float64)
    scale = to_numpy(block.norm_layer.scale)
    normed = x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + 1e-5) * scale
    x_in, z = np.split(normed @ to_numpy(block.in_proj.kernel), 2, axis=-1)
    kernel = to_numpy(block.conv.kernel)[:, 0, :]  # (d_conv, d_inner)
    padded = np.pad(x_in, ((0, 0), (block.d_conv - 1, 0), (0, 0)))
    conv = sum(
        padded[:, k : k + x.shape[1]] * kernel[k] for k in range(block.d_conv)
    ) + to_numpy(block.conv.bias)
    y = reference_selective_ssm(block.ssm, silu(conv))
    return x + (y * silu(z)) @ to_numpy(block.out_proj.kernel)


def random_inputs(batch=2, length=10, d_model=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, length, d_model)).astype("float32")


def make_block(d_model=8, **kwargs):
    kwargs.setdefault("d_state", 4)
    block = MambaBlock(**kwargs)
    block.build((None, None, d_model))
    return block


def test_matches_float64_reference():
    block = make_block()
    assert block.d_inner == 16 and block.resolved_dt_rank == 1
    x = random_inputs()
    np.testing.assert_allclose(
        to_numpy(block(x)), reference_block(block, x), rtol=1e-4, atol=1e-5
    )


def test_step_matches_call_and_is_causal():
    block = make_block(d_conv=3)
    x = random_inputs()
    y = to_numpy(block(x))
    np.testing.assert_allclose(run_steps(block, x), y, rtol=1e-4, atol=1e-5)
    changed = x.copy()
    changed[:, 6:] -= 2.0
    np.testing.assert_allclose(
        to_numpy(block(changed))[:, :6], y[:, :6], rtol=1e-5, atol=1e-6
    )


def test_bidirectional_averages_both_directions():
    block = make_block(bidirectional=True)
    x = random_inputs()
    y = to_numpy(block(x))
    changed = x.copy()
    changed[:, 6:] -= 2.0
    assert np.max(np.abs(to_numpy(block(changed))[:, :6] - y[:, :6])) > 1e-4
    # Swapping the two mixers and reversing time mirrors the output.
    mirrored = make_block(bidirectional=True)
    mirrored.set_weights(block.get_weights())
    for forward, backward in (
        (mirrored.conv, block.conv_backward),
        (mirrored.ssm, block.ssm_backward),
        (mirrored.conv_backward, block.conv),
        (mirrored.ssm_backward, block.ssm),
    ):
        forward.set_weights(backward.get_weights())
    np.testing.assert_allclose(
        to_numpy(mirrored(x[:, ::-1]))[:, ::-1], y, rtol=1e-4, atol=1e-5
    )
    with pytest.raises(ValueError, match="bidirectional"):
        block.step(x[:, 0], block.get_initial_state(2))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_mask_gives_the_unpadded_outputs(bidirectional):
    block = make_block(bidirectional=bidirectional)
    assert_padding_is_ignored(block, random_inputs(), valid=[7, 10], atol=1e-5)


def test_dt_scale_reaches_the_ssm():
    block = make_block()
    x = random_inputs()
    half = to_numpy(block(x, dt_scale=0.5))
    assert np.max(np.abs(half - to_numpy(block(x)))) > 1e-4
    scaled = make_block(dt_scale=0.5)
    scaled.set_weights(block.get_weights())
    np.testing.assert_allclose(to_numpy(scaled(x)), half, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(policy):
    reference = make_block(bidirectional=True)
    keras.config.set_dtype_policy(policy)
    block = make_block(bidirectional=True)
    x = random_inputs()
    assert_mixed_precision_close(reference, block, policy, x, 0.05, 0.1)
    assert block.ssm.A_log.dtype == "float32"


def test_num_layers_rescales_out_proj_init():
    deep = assert_out_proj_scaled_by_depth(make_block)
    assert MambaBlock.from_config(deep.get_config()).num_layers == 4
    with pytest.raises(ValueError, match="`num_layers`"):
        MambaBlock(num_layers=0)


def _uniform_bound_check(values, bound):
    """Values look like U(-bound, bound): range, mean and std.

    Tolerances are 4 standard errors for the sample size (a uniform's std
    estimate has relative standard error sqrt(0.8 / (4 n))).
    """
    values = values.ravel()
    n = values.size
    assert np.max(np.abs(values)) <= bound * (1 + 1e-6)
    assert np.max(np.abs(values)) > (1 - 8 / n) * bound
    assert abs(values.mean()) < 4 * bound / np.sqrt(3 * n)
    np.testing.assert_allclose(
        values.std(), bound / np.sqrt(3), rtol=4 * np.sqrt(0.8 / (4 * n))
    )


def test_initialisation_follows_pytorch_defaults_as_mamba():
    """PyTorch's Linear/Conv1d defaults U(+-1/sqrt(fan_in)), as Mamba."""
    d_model, expand, d_conv = 128, 2, 4
    block = make_block(d_model=d_model, expand=expand, d_conv=d_conv)
    d_inner = expand * d_model
    _uniform_bound_check(to_numpy(block.in_proj.kernel), d_model**-0.5)
    _uniform_bound_check(to_numpy(block.out_proj.kernel), d_inner**-0.5)
    _uniform_bound_check(to_numpy(block.ssm.x_proj), d_inner**-0.5)
    # Depthwise conv: fan_in is the width d_conv, for weight and bias.
    _uniform_bound_check(to_numpy(block.conv.kernel), d_conv**-0.5)
    _uniform_bound_check(to_numpy(block.conv.bias), d_conv**-0.5)
    rank = block.resolved_dt_rank
    _uniform_bound_check(to_numpy(block.ssm.dt_proj), rank**-0.5)


def test_config_and_save_load_roundtrip(tmp_path):
    block = MambaBlock(d_state=4, d_conv=3, expand=1, dt_scale=0.8)
    restored = MambaBlock.from_config(block.get_config())
    assert restored.get_config() == block.get_config()
    model = keras.Sequential(
        [
            keras.Input((10, 8)),
            block,
            MambaBlock(d_state=4, bidirectional=True, scan_method="chunked"),
        ]
    )
    assert_save_load_roundtrip(model, random_inputs(), tmp_path)


def test_bad_arguments_and_shapes_raise():
    with pytest.raises(ValueError, match="`d_conv`"):
        MambaBlock(d_conv=0)
    with pytest.raises(ValueError, match="`expand`"):
        MambaBlock(expand=1.5)
    with pytest.raises(ValueError, match="`norm`"):
        MambaBlock(norm="group")
    with pytest.raises(ValueError, match="`dt_rank`"):
        MambaBlock(dt_rank=-2)
    with pytest.raises(ValueError, match="`dropout`"):
        MambaBlock(dropout=1.0)
    with pytest.raises(ValueError, match="`scan_method`"):
        MambaBlock(scan_method="cuda")
    block = MambaBlock(d_state=4)
    assert_refuses_bad_shapes(block, 8, "rank 3", step_match=r"\(batch, 8\)")


@pytest.mark.slow
@rotated(0, "trains until the task is learned")
def test_learns_induction_heads():
    """Two small blocks solve induction heads under `model.fit` (auto jit)."""
    history = fit_induction_heads(
        lambda: [MambaBlock(d_state=8), MambaBlock(d_state=8)],
        vocab=8, length=16, width=32, learning_rate=3e-3, num_train=2048,
        epochs=10,
    )  # fmt: skip
    assert max(history["val_accuracy"]) >= 0.9  # chance: 0.125
