"""The state space dual (SSD) algorithm of Mamba-2, in chunked matrix form.

Dao & Gu, *Transformers are SSMs: Generalized Models and Efficient
Algorithms Through Structured State Space Duality*, ICML 2024. Each head h
has one scalar decay A_h <= 0 per step, so with a_t = dt_t A_h the
recurrence

    H_t = exp(a_t) H_{t-1} + dt_t x_t B_t^T      (headdim, d_state) per head
    y_t = H_t C_t

is also a masked matrix product y = (L o C B^T) (dt x) with the decay mask
L[t, s] = exp(a_{s+1} + ... + a_t) for s <= t and 0 above the diagonal
("segsum"). SSD splits the sequence into chunks of Q steps and

1. inside every chunk, applies that quadratic form (Q x Q per chunk);
2. computes each chunk's state from a zero start: sum_s exp(a_{s+1} + ... +
   a_end) dt_s x_s B_s^T;
3. passes the states across chunks with the same recurrence, one step per
   chunk: S_k = exp(a_chunk k) S_{k-1} + state_k;
4. adds what the incoming state S_{k-1} contributes to every output of
   chunk k: exp(a_start + ... + a_t) S_{k-1} C_t.

Work is O(L Q (headdim + d_state)) and memory O(L Q) per head: no (L, L)
tensor is formed. Step 3 is a linear recurrence over the L / Q chunk states
(`keras_ssm.ops.log_linear_recurrence`); the paper's minimal listing (and
the reference `ssd_minimal.py`) writes it as one more segsum matrix of size
(L / Q)^2, the same result with memory quadratic in the number of chunks.

Every exponent is a sum of non-positive a_t (given dt >= 0 and A <= 0), so
no exp of a positive number appears; the decay mask is built from
cumulative sums inside the lower triangle and set to -inf above it before
the exp, so neither values nor gradients overflow.
"""

import keras
import numpy as np
from keras import ops

from keras_ssm.ops.scan import log_linear_recurrence
from keras_ssm.ops.scan import on_accelerator

# Chunk lengths chosen with `benchmarks/bench_ssd.py`: forward + backward
# of `ssd`, length 2048, batch 2, 4 heads of 32, d_state 64, chunks of 16 to
# 256, on a 2-core x86 CPU that ran five other jobs (load average 10-11),
# so only coarse orderings are meaningful. PyTorch: 64 fastest (0.73 s;
# 16 and 32 ~0.8 s, 128 1.2 s, 256 1.6 s). JAX: 32 and 64 within the noise
# of each other (0.20-0.46 s in three runs), 128 and 256 1.6-3x slower.
# TensorFlow: 64 and 128 traded places between runs (0.12-0.27 s), 256 and
# 32 no faster. Small chunks keep the quadratic work inside a chunk low on
# the CPU; accelerators favour larger matrix products (the reference uses
# 256 on GPUs; not measured here).
DEFAULT_CHUNK_SIZES = {"jax": 64, "tensorflow": 64, "torch": 64}
ACCELERATOR_CHUNK_SIZE = 256


def default_ssd_chunk_size():
    """The chunk length `ssd` uses when `chunk_size=None`.

    256 on GPUs/TPUs (as the reference Mamba-2 kernels); on the CPU the
    per-backend value of `DEFAULT_CHUNK_SIZES`: 64 for JAX, TensorFlow and
    PyTorch, the fastest or within noise of the fastest of 16..256 when
    timed with `benchmarks/bench_ssd.py` on a loaded 2-core CPU (see the
    module source for the measurement).
    """
    if on_accelerator():
        return ACCELERATOR_CHUNK_SIZE
    return DEFAULT_CHUNK_SIZES.get(keras.backend.backend(), 64)


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def _check_arguments(x, dt, A, B, C, chunk_size, initial_state, final):
    """Clear errors for wrong ranks, sizes and argument types."""
    ranks = {"x": 4, "dt": 3, "A": 1, "B": 4, "C": 4}
    layouts = {
        "x": "(batch, length, heads, headdim)",
        "dt": "(batch, length, heads)",
        "A": "(heads,)",
        "B": "(batch, length, groups, d_state)",
        "C": "(batch, length, groups, d_state)",
    }
    for name, value in zip(ranks, (x, dt, A, B, C)):
        if len(value.shape) != ranks[name]:
            raise ValueError(
                f"`{name}` must have shape {layouts[name]} (rank "
                f"{ranks[name]}), got shape {tuple(value.shape)}."
            )
    heads, headdim = x.shape[2], x.shape[3]
    groups, d_state = B.shape[2], B.shape[3]
    for name, size in (
        ("heads (x.shape[2])", heads),
        ("headdim (x.shape[3])", headdim),
        ("groups (B.shape[2])", groups),
        ("d_state (B.shape[3])", d_state),
    ):
        if size is None:
            raise ValueError(
                f"`ssd` needs a static {name}; got x {tuple(x.shape)} and "
                f"B {tuple(B.shape)}."
            )
    if heads % groups:
        raise ValueError(
            f"The number of heads (x.shape[2] = {heads}) must be a multiple "
            f"of the number of groups (B.shape[2] = {groups})."
        )

    def differ(want, got):
        return any(
            w is not None and g is not None and w != g
            for w, g in zip(want, got)
        )

    batch, length = x.shape[0], x.shape[1]
    expected = {
        "dt": (batch, length, heads),
        "A": (heads,),
        "B": (batch, length, groups, d_state),
        "C": (batch, length, groups, d_state),
    }
    for name, value in (("dt", dt), ("A", A), ("B", B), ("C", C)):
        if differ(expected[name], value.shape):
            raise ValueError(
                f"`{name}` must have shape {layouts[name]} = "
                f"{expected[name]} to match `x` {tuple(x.shape)} and `B` "
                f"{tuple(B.shape)}, got {tuple(value.shape)}."
            )
    if chunk_size is not None and (not _is_int(chunk_size) or chunk_size < 1):
        raise ValueError(
            "`chunk_size` must be None or a positive integer, got "
            f"{chunk_size!r}."
        )
    if initial_state is not None:
        want = (batch, heads, headdim, d_state)
        shape = tuple(initial_state.shape)
        if len(shape) != 4 or differ(want, shape):
            raise ValueError(
                "`initial_state` must have shape (batch, heads, headdim, "
                f"d_state) = {want}, got {shape}."
            )
    if not isinstance(final, bool):
        raise ValueError(f"`return_final_state` must be a bool, got {final!r}.")


def _dim(x, axis):
    """Static size of `x` along `axis` if known, else a dynamic scalar."""
    size = x.shape[axis]
    return size if size is not None else ops.shape(x)[axis]


def segsum(a):
    """Segment sums of `a` (..., T): out[..., t, s] = a_{s+1} + ... + a_t.

    Zero on the diagonal and -inf above it (s > t), so that exp(segsum(a))
    is the causal decay mask. Each entry is summed from the a's of its own
    segment (a cumulative sum down the columns of a masked copy), not as a
    difference of two long cumulative sums: no cancellation, and nothing
    above the diagonal is ever positive, even before the -inf is set.

    Args:
        a: tensor of shape `(..., T)` with a static `T`.

    Returns:
        Tensor of shape `(..., T, T)`.
    """
    steps = a.shape[-1]
    below = ops.convert_to_tensor(np.tril(np.ones((steps, steps), bool), -1))
    causal = ops.convert_to_tensor(np.tril(np.ones((steps, steps), bool)))
    # terms[..., r, s] = a_r where r > s: column s holds a_{s+1}, ..., a_T.
    terms = ops.where(
        below, ops.expand_dims(a, -1), ops.zeros_like(a)[..., None]
    )
    sums = ops.cumsum(terms, axis=-2)
    return ops.where(causal, sums, ops.full_like(sums, -np.inf))


def ssd(
    x,
    dt,
    A,
    B,
    C,
    chunk_size=None,
    initial_state=None,
    return_final_state=False,
):
    """Mamba-2's selective SSM with scalar decay per head, by chunks.

    Per head h (with group g = h // (heads / groups)) and step t:

        H_t = exp(dt_t A_h) H_{t-1} + dt_t x_t B_t^T    H: (headdim, d_state)
        y_t = H_t C_t

    computed by the chunked SSD algorithm of Dao & Gu, *Transformers are
    SSMs: Generalized Models and Efficient Algorithms Through Structured
    State Space Duality*, ICML 2024: within each chunk of `chunk_size`
    steps the quadratic (attention-like) form with the decay mask
    exp(segsum(dt A)), across chunks the recurrence on the chunk states.
    It runs in float32 whatever the input dtypes and returns `y` in
    float32, or in float16 / bfloat16 when `x` is (mixed precision). The
    skip term D x of Mamba-2 is not included. A partial last chunk is
    padded with dt = 0 steps (which leave the state unchanged) and an
    unknown (symbolic) length works.

    Args:
        x: inputs, `(batch, length, heads, headdim)`.
        dt: step sizes, `(batch, length, heads)`, >= 0; a step with dt = 0
            leaves the state unchanged and adds no input (padding).
        A: decay rates, `(heads,)`, <= 0.
        B: input matrices, `(batch, length, groups, d_state)`; `heads` must
            be a multiple of `groups` (heads share B and C within a group).
        C: output matrices, `(batch, length, groups, d_state)`.
        chunk_size: steps per chunk; `None` = `default_ssd_chunk_size()`
            (64 on the CPU with every backend, 256 on accelerators). Memory
            grows with length x chunk_size, never length^2.
        initial_state: optional state before the first step, `(batch,
            heads, headdim, d_state)`; zeros if None.
        return_final_state: also return the state after the last step.

    Returns:
        `y` of shape `(batch, length, heads, headdim)`, or `(y,
        final_state)` with `final_state` of shape `(batch, heads, headdim,
        d_state)`, float32.

    Example:

    >>> from keras import ops
    >>> x = ops.ones((1, 5, 2, 3))
    >>> dt = ops.full((1, 5, 2), 0.1)
    >>> A = -ops.ones((2,))
    >>> B = C = ops.ones((1, 5, 1, 4))
    >>> y, state = ssd(x, dt, A, B, C, chunk_size=2, return_final_state=True)
    >>> tuple(y.shape), tuple(state.shape)
    ((1, 5, 2, 3), (1, 2, 3, 4))
    """
    _check_arguments(
        x, dt, A, B, C, chunk_size, initial_state, return_final_state
    )
    out_dtype = keras.backend.standardize_dtype(x.dtype)
    if out_dtype not in ("float16", "bfloat16"):
        out_dtype = "float32"
    x, dt, A, B, C = (ops.cast(v, "float32") for v in (x, dt, A, B, C))
    if initial_state is not None:
        initial_state = ops.cast(initial_state, "float32")
    chunk = int(chunk_size or default_ssd_chunk_size())
    y, final = _chunked_ssd(x, dt, A, B, C, initial_state, chunk)
    y = ops.cast(y, out_dtype)
    return (y, final) if return_final_state else y


def _chunked_ssd(x, dt, A, B, C, initial_state, chunk):
    """The four steps of SSD on float32 tensors; returns (y, final)."""
    if keras.backend.backend() == "jax":
        # One compiled function per shape: eager JAX would otherwise
        # compile each of the ~40 ops on its own (inside jit it inlines).
        return _jax_chunked_ssd()(x, dt, A, B, C, initial_state, chunk)
    return _chunked_ssd_ops(x, dt, A, B, C, initial_state, chunk)


_JAX_FUNCTIONS = {}


def _jax_chunked_ssd():
    if "ssd" not in _JAX_FUNCTIONS:
        import jax

        _JAX_FUNCTIONS["ssd"] = jax.jit(
            _chunked_ssd_ops, static_argnames=("chunk",)
        )
    return _JAX_FUNCTIONS["ssd"]


def _chunked_ssd_ops(x, dt, A, B, C, initial_state, chunk):
    """`_chunked_ssd` in keras.ops (every backend)."""
    batch, length = _dim(x, 0), _dim(x, 1)
    heads, headdim = x.shape[2], x.shape[3]
    groups, d_state = B.shape[2], B.shape[3]
    per_group = heads // groups

    pad = (-length) % chunk
    if not (isinstance(pad, int) and pad == 0):
        # dt = 0 (and x = B = C = 0) at the end: the state passes through.
        def pad_time(v):
            widths = [[0, 0], [0, pad]] + [[0, 0]] * (len(v.shape) - 2)
            return ops.pad(v, widths)

        x, dt, B, C = (pad_time(v) for v in (x, dt, B, C))

    # (batch, chunks, Q, groups, heads per group, ...): B and C are shared
    # by the heads of a group without being repeated per head.
    xdt = ops.reshape(
        x * dt[..., None], (batch, -1, chunk, groups, per_group, headdim)
    )
    a = ops.reshape(dt * A, (batch, -1, chunk, groups, per_group))
    B = ops.reshape(B, (batch, -1, chunk, groups, d_state))
    C = ops.reshape(C, (batch, -1, chunk, groups, d_state))
    a = ops.transpose(a, (0, 1, 3, 4, 2))  # (b, c, g, r, Q)
    cum = ops.cumsum(a, axis=-1)  # a_1 + ... + a_t within the chunk

    # 1. Inside each chunk:
    #    y_t = sum_{s<=t} exp(a_{s+1} + ... + a_t) (C_t . B_s) dt_s x_s.
    scores = ops.einsum("bclgn,bcsgn->bcgls", C, B)
    weights = ops.expand_dims(scores, 3) * ops.exp(segsum(a))
    y = ops.einsum("bcgrls,bcsgrp->bclgrp", weights, xdt)

    # 2. Each chunk's end state from a zero start (exponents <= 0).
    to_end = ops.exp(cum[..., -1:] - cum)  # exp(a_{s+1} + ... + a_Q)
    to_end = ops.transpose(to_end, (0, 1, 4, 2, 3))[..., None]
    states = ops.einsum("bclgn,bclgrp->bcgrpn", B, xdt * to_end)

    # 3. Across chunks: S_k = exp(a_1 + ... + a_Q of chunk k) S_{k-1} + s_k.
    chunk_log_decay = cum[..., -1][..., None, None]  # (b, c, g, r, 1, 1)
    if initial_state is None:
        start = ops.zeros((batch, groups, per_group, headdim, d_state))
    else:
        start = ops.reshape(
            initial_state, (batch, groups, per_group, headdim, d_state)
        )
    carried = log_linear_recurrence(
        chunk_log_decay,
        states,
        initial_state=None if initial_state is None else start,
    )
    incoming = ops.concatenate(
        [ops.expand_dims(start, 1), carried[:, :-1]], axis=1
    )

    # 4. What the incoming state adds: exp(a_1 + ... + a_t) S_{k-1} C_t.
    from_start = ops.transpose(ops.exp(cum), (0, 1, 4, 2, 3))[..., None]
    y = y + ops.einsum("bclgn,bcgrpn->bclgrp", C, incoming) * from_start

    y = ops.reshape(y, (batch, -1, heads, headdim))
    if not (isinstance(pad, int) and pad == 0):
        y = y[:, :length]
    final = ops.reshape(carried[:, -1], (batch, heads, headdim, d_state))
    return y, final
