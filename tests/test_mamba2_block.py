"""Mamba2Block: float64 per-head reference, step mode, masks, saving."""

import keras
import numpy as np
import pytest

from keras_ssm.layers import Mamba2Block
from keras_ssm.layers.base import is_ssm_parameter
from tests.helpers import assert_mixed_precision_close
from tests.helpers import assert_out_proj_scaled_by_depth
from tests.helpers import assert_padding_is_ignored
from tests.helpers import assert_refuses_bad_shapes
from tests.helpers import assert_save_load_roundtrip
from tests.helpers import fit_induction_heads
from tests.helpers import rotated
from tests.helpers import run_steps
from tests.helpers import to_numpy
from tests.test_selective_ssm import layer_gradients
from tests.test_ssd import reference_ssd


def silu(x):
    return x / (1.0 + np.exp(-x))


def softplus(x):
    return np.logaddexp(0.0, x)


def reference_block(block, u, mask=None):
    """The block from its own weights, in float64 (pre-RMS-norm)."""
    u = np.asarray(u, np.float64)
    batch, length, _ = u.shape
    scale = to_numpy(block.norm_layer.scale)
    normed = u / np.sqrt(np.mean(u**2, axis=-1, keepdims=True) + 1e-5) * scale
    proj = normed @ to_numpy(block.in_proj.kernel)
    d_inner, n, g = block.d_inner, block.d_state, block.ngroups
    heads, p = block.num_heads, block.headdim
    z = proj[..., :d_inner]
    xbc = proj[..., d_inner : 2 * d_inner + 2 * g * n]
    dt_raw = proj[..., 2 * d_inner + 2 * g * n :]
    mixer = block.mixer
    if mask is not None:
        xbc = xbc * mask[..., None]
    kernel = to_numpy(mixer.conv.kernel)[:, 0, :]  # (d_conv, conv_dim)
    padded = np.pad(xbc, ((0, 0), (block.d_conv - 1, 0), (0, 0)))
    conv = sum(
        padded[:, k : k + length] * kernel[k] for k in range(block.d_conv)
    ) + to_numpy(mixer.conv.bias)
    xbc = silu(conv)
    x = xbc[..., :d_inner].reshape(batch, length, heads, p)
    B = xbc[..., d_inner : d_inner + g * n].reshape(batch, length, g, n)
    C = xbc[..., d_inner + g * n :].reshape(batch, length, g, n)
    dt = softplus(dt_raw + to_numpy(mixer.dt_bias))
    if mask is not None:
        x = x * mask[..., None, None]
        dt = dt * mask[..., None]
    A = -np.exp(to_numpy(mixer.A_log))
    y, _ = reference_ssd(x, dt, A, B, C)
    y = y + to_numpy(mixer.D_skip)[:, None] * x
    gated = y.reshape(batch, length, d_inner) * silu(z)
    grouped = gated.reshape(batch, length, g, d_inner // g)
    grouped = grouped / np.sqrt(np.mean(grouped**2, -1, keepdims=True) + 1e-5)
    gated = grouped.reshape(batch, length, d_inner)
    gated = gated * to_numpy(block.gate_norm_scale)
    out = u + gated @ to_numpy(block.out_proj.kernel)
    return out if mask is None else out * mask[..., None]


def random_inputs(batch=2, length=10, channels=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, length, channels)).astype("float32")


def make_block(channels=8, **kwargs):
    # 16 inner channels: 4 heads of 4, d_state 4, chunks of 4 (10 steps
    # leave a partial last chunk).
    for key, value in (("d_state", 4), ("headdim", 4), ("chunk_size", 4)):
        kwargs.setdefault(key, value)
    block = Mamba2Block(**kwargs)
    block.build((None, None, channels))
    return block


def randomize_ssm(block):
    """Spread A, dt and D so that the heads differ visibly."""
    rng = np.random.default_rng(1)
    mixers = [block.mixer] + (
        [block.mixer_backward] if block.bidirectional else []
    )
    for mixer in mixers:
        heads = mixer.num_heads
        mixer.A_log.assign(np.log(rng.uniform(0.5, 3.0, heads)))
        mixer.dt_bias.assign(rng.uniform(-2.0, 0.5, heads))
        mixer.D_skip.assign(rng.uniform(0.5, 1.5, heads))
    return block


@pytest.mark.parametrize("ngroups", [1, 2])
def test_matches_float64_reference(ngroups):
    block = randomize_ssm(make_block(ngroups=ngroups))
    assert (block.d_inner, block.num_heads) == (16, 4)
    x = random_inputs()
    np.testing.assert_allclose(
        to_numpy(block(x)), reference_block(block, x), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("prenorm", [True, False])
def test_step_matches_call_and_is_causal(prenorm):
    block = randomize_ssm(make_block(d_conv=3, ngroups=2, prenorm=prenorm))
    x = random_inputs()
    y = to_numpy(block(x))
    np.testing.assert_allclose(run_steps(block, x), y, rtol=1e-4, atol=1e-4)
    changed = x.copy()
    changed[:, 6:] += 3.0
    changed_y = to_numpy(block(changed))
    np.testing.assert_allclose(changed_y[:, :6], y[:, :6], rtol=1e-5, atol=1e-5)
    assert np.max(np.abs(changed_y[:, 6:] - y[:, 6:])) > 1e-3


def test_bidirectional_sees_the_future_and_has_no_step():
    block = randomize_ssm(make_block(bidirectional=True))
    x = random_inputs()
    y = to_numpy(block(x))
    changed = x.copy()
    changed[:, 6:] += 3.0
    assert np.max(np.abs(to_numpy(block(changed))[:, :6] - y[:, :6])) > 1e-4
    # Swapping the two mixers and reversing time mirrors the output.
    mirrored = make_block(bidirectional=True)
    mirrored.set_weights(block.get_weights())
    mirrored.mixer.set_weights(block.mixer_backward.get_weights())
    mirrored.mixer_backward.set_weights(block.mixer.get_weights())
    np.testing.assert_allclose(
        to_numpy(mirrored(x[:, ::-1]))[:, ::-1], y, rtol=1e-4, atol=1e-4
    )
    with pytest.raises(ValueError, match="bidirectional"):
        block.step(x[:, 0], block.get_initial_state(2))


def test_every_weight_gets_a_finite_nonzero_gradient():
    block = randomize_ssm(make_block(ngroups=2, bidirectional=True))
    grads = layer_gradients(block, random_inputs())
    assert len(grads) == len(block.trainable_variables)
    for variable, grad in zip(block.trainable_variables, grads):
        assert np.all(np.isfinite(grad)), variable.path
        assert np.max(np.abs(grad)) > 0, variable.path


@pytest.mark.parametrize("bidirectional", [False, True])
def test_mask_gives_the_unpadded_outputs(bidirectional):
    block = randomize_ssm(make_block(bidirectional=bidirectional))
    x, mask, y = assert_padding_is_ignored(block, random_inputs(), [7, 10])
    if not bidirectional:
        np.testing.assert_allclose(
            y, reference_block(block, x, mask), rtol=1e-4, atol=1e-4
        )


def test_symbolic_length_and_initialisation():
    keras.utils.set_random_seed(2)
    block = Mamba2Block(d_state=4, headdim=8, A_init_range=(2, 5))
    model = keras.Sequential([keras.Input((None, 16)), block])
    for length in (5, 21):
        assert tuple(model(random_inputs(1, length, 16)).shape) == (
            1,
            length,
            16,
        )
    A = np.exp(to_numpy(block.mixer.A_log))
    assert np.all((A >= 2) & (A <= 5)) and A.shape == (4,)
    dt = np.logaddexp(0.0, to_numpy(block.mixer.dt_bias))
    assert np.all((dt >= 0.001 * 0.999) & (dt <= 0.1 * 1.001))
    assert np.ptp(dt) > 0  # sampled, not constant


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(policy):
    reference = randomize_ssm(make_block(bidirectional=True))
    keras.config.set_dtype_policy(policy)
    block = make_block(bidirectional=True)
    x = random_inputs()
    assert_mixed_precision_close(reference, block, policy, x, 0.05, 0.1)
    for weight in (block.mixer.A_log, block.mixer.dt_bias, block.mixer.D_skip):
        assert weight.dtype == "float32"
    causal = make_block()
    state = causal.get_initial_state(2)
    y_t, (conv_state, ssm_state) = causal.step(x[:, 0], state)
    assert keras.backend.standardize_dtype(ssm_state.dtype) == "float32"


def test_ssm_weights_get_no_weight_decay():
    block = make_block(bidirectional=True)
    exempt = sorted(w.path for w in block.weights if is_ssm_parameter(w))
    assert len(exempt) == 6, exempt  # A_log, dt_bias, D_skip per direction
    for name in ("A_log", "dt_bias", "D_skip"):
        assert is_ssm_parameter(getattr(block.mixer, name))
        assert is_ssm_parameter(getattr(block.mixer_backward, name))
    for w in block.weights:
        if "kernel" in w.path or "scale" in w.path:
            assert not is_ssm_parameter(w), w.path


def test_num_layers_rescales_out_proj_init():
    assert_out_proj_scaled_by_depth(make_block)


def test_config_and_save_load_roundtrip(tmp_path):
    block = Mamba2Block(
        d_state=4,
        headdim=4,
        ngroups=2,
        intermediate_dim=24,
        chunk_size=3,
        prenorm=False,
        norm="layer",
    )
    restored = Mamba2Block.from_config(block.get_config())
    assert restored.get_config() == block.get_config()
    model = keras.Sequential(
        [
            keras.Input((10, 8)),
            block,
            Mamba2Block(d_state=4, headdim=8, bidirectional=True, dropout=0.1),
        ]
    )
    assert model.layers[0].d_inner == 24
    assert_save_load_roundtrip(model, random_inputs(), tmp_path)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"d_state": 0}, "d_state"),
        ({"d_conv": 2.0}, "d_conv"),
        ({"expand": True}, "expand"),
        ({"headdim": -4}, "headdim"),
        ({"ngroups": None}, "ngroups"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"intermediate_dim": 1.5}, "intermediate_dim"),
        ({"A_init_range": (0, 16)}, "A_init_range"),
        ({"A_init_range": (4, 2)}, "A_init_range"),
        ({"dt_min": float("nan")}, "dt_min"),
        ({"dt_min": 0.2, "dt_max": 0.1}, "dt_min"),
        ({"dt_init_floor": 0}, "dt_init_floor"),
        ({"conv_bias": 1}, "conv_bias"),
        ({"bias": "no"}, "bias"),
        ({"norm": "group"}, "norm"),
        ({"prenorm": None}, "prenorm"),
        ({"dropout": 1.0}, "dropout"),
        ({"bidirectional": 0}, "bidirectional"),
        ({"num_layers": 0}, "num_layers"),
        ({"headim": 4}, "headim"),
    ],
)
def test_bad_arguments_raise_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Mamba2Block(**kwargs)


def test_bad_shapes_and_unbuilt_step_raise():
    with pytest.raises(ValueError, match="multiple of `headdim`"):
        Mamba2Block(headdim=5).build((None, None, 8))
    with pytest.raises(ValueError, match="multiple of `ngroups`"):
        Mamba2Block(headdim=4, ngroups=3).build((None, None, 8))
    with pytest.raises(ValueError, match="rank 3"):
        Mamba2Block(headdim=4)(np.zeros((2, 8), "float32"))
    with pytest.raises(ValueError, match="not built"):
        Mamba2Block().get_initial_state(2)
    with pytest.raises(ValueError, match="not built"):
        Mamba2Block().step(np.zeros((2, 8), "float32"), None)
    assert_refuses_bad_shapes(make_block(), 8, step_match=r"\(batch, 8\)")
    # Python and NumPy integers are both sizes.
    assert Mamba2Block(d_state=np.int64(4)).d_state == 4


@pytest.mark.slow
@rotated(2, "trains until the task is learned")
def test_learns_induction_heads():
    """One small block recalls the token after a marker (chance: 1/6).

    About 64 Adam steps: 17 s on JAX, 55-75 s on PyTorch on a 2-core CPU
    running five other jobs (load 10).
    """
    history = fit_induction_heads(
        lambda: [Mamba2Block(d_state=8, headdim=8, chunk_size=8)],
        vocab=6, length=12, width=16, learning_rate=1e-2, num_train=1024,
        epochs=8,
    )  # fmt: skip
    assert history["val_accuracy"][0] < 0.5  # not solved at once
    assert max(history["val_accuracy"]) >= 0.9


def mambapy_residual_block():
    """mambapy's Mamba-2 residual block class, or skip where it cannot run.

    mambapy's `Mamba2` imports mamba_ssm's Triton kernels (and einops), so
    it runs only on PyTorch with CUDA.
    """
    if keras.backend.backend() != "torch":
        pytest.skip("mambapy is a PyTorch package")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("mambapy's Mamba2 needs CUDA (mamba_ssm Triton kernels)")
    try:
        from mambapy import mamba2
    except ImportError as error:
        pytest.skip(f"mambapy's Mamba2 is not importable: {error}")
    return mamba2


def test_matches_mambapy_with_the_same_weights():
    mamba2 = mambapy_residual_block()
    import torch

    channels, headdim, d_state = 64, 16, 16
    config = mamba2.Mamba2Config(
        d_model=channels, n_layers=1, d_head=headdim, d_state=d_state
    )
    theirs = mamba2.ResidualBlock(config).cuda().float().eval()
    block = Mamba2Block(d_state=d_state, headdim=headdim, chunk_size=16)
    block.build((None, None, channels))
    mixer = theirs.mixer

    def weight(tensor):
        return tensor.detach().cpu().numpy()

    block.norm_layer.scale.assign(weight(theirs.norm.weight))
    block.in_proj.kernel.assign(weight(mixer.in_proj.weight).T)
    # torch Conv1d (channels, 1, width) -> Keras Conv1D (width, 1, channels);
    # both read inputs t - width + 1 .. t with taps 0 .. width - 1.
    block.mixer.conv.kernel.assign(
        weight(mixer.conv1d.weight).transpose(2, 1, 0)
    )
    block.mixer.conv.bias.assign(weight(mixer.conv1d.bias))
    block.mixer.dt_bias.assign(weight(mixer.dt_bias))
    block.mixer.A_log.assign(weight(mixer.A_log))
    block.mixer.D_skip.assign(weight(mixer.D))
    block.gate_norm_scale.assign(weight(mixer.norm.weight))
    block.out_proj.kernel.assign(weight(mixer.out_proj.weight).T)
    x = random_inputs(2, 40, channels)
    with torch.no_grad():
        expected = weight(theirs(torch.as_tensor(x).cuda()))
    np.testing.assert_allclose(
        to_numpy(block(x)), expected, rtol=1e-3, atol=1e-3
    )
