"""Mamba's selective scan with its readout, as one op.

    h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t,    y_t = C_t h_t

Per channel d and state n, `h` has shape (batch, d_inner, d_state). Two ways
to compute it:

- Any method of `keras_ssm.ops.log_linear_recurrence` (`"sequential"`,
  `"chunked"`, `"logspace"`, ...): form the (batch, length, d_inner,
  d_state) log-decays dt A and drives dt B u, scan them, contract with C.
  Portable (`keras.ops` only).
- `"streaming"` (JAX): one `lax.scan` over time whose body forms
  exp(dt_t A), dt_t B_t u_t and C_t h_t for its own step, so no
  (batch, length, d_inner, d_state) tensor is ever built. The gradient is
  checkpointed per chunk of `chunk_size` steps (default 64): the forward
  pass keeps only the state at each chunk start, and the backward pass
  recomputes one chunk at a time, so memory is O(L / T + T) states instead
  of O(L). This is the CPU counterpart of mamba_ssm's fused CUDA kernel.
  On PyTorch it is a Python loop over steps that keeps only the
  (batch, d_inner) outputs: with gradients it is 1.5-5x slower than the
  materialised sequential scan (autograd stores every step anyway), but
  without them (inference, prefill) it skips building, stacking and
  reading (batch, length, d_inner, d_state) tensors, 3x faster at Mamba
  130m's prefill shape (8 x 64 steps x 1536 channels x 16 states: 33 ms
  against 104 ms per layer, 2-core CPU, PyTorch 2, no_grad). On
  TensorFlow it falls back to `default_log_method()`: `tf.scan`'s gradient
  is quadratic in length.

Why streaming is the JAX CPU default: forward + backward of the scan, width
d_inner = 128, d_state = 16, idle 2-core x86 CPU, JAX 0.10 (jit):

    batch  length  materialised sequential  streaming (T = 64)
    1      8192          0.96-1.10 s             0.16-0.17 s
    8      2048          1.25 s                  0.41-0.47 s
"""

import keras
from keras import ops

from keras_ssm.ops.scan import LOG_METHODS
from keras_ssm.ops.scan import default_log_method
from keras_ssm.ops.scan import log_linear_recurrence
from keras_ssm.ops.scan import on_accelerator

SELECTIVE_METHODS = LOG_METHODS + ("streaming",)
STREAM_CHUNK = 64


def default_selective_method():
    """The method `selective_scan` uses for `method="auto"`.

    `"streaming"` on JAX on the CPU (3-6x faster than the materialised
    sequential scan, see the module docstring), and on CPU PyTorch when
    gradients are off (inference); elsewhere `default_log_method()`:
    sequential on CPU PyTorch under autograd, log-space on TensorFlow and
    on accelerators, where one loop step per time step costs a kernel
    launch each.
    """
    backend = keras.backend.backend()
    if backend == "jax" and not on_accelerator():
        return "streaming"
    if backend == "torch" and not on_accelerator():
        import torch

        if not torch.is_grad_enabled():
            return "streaming"
    return default_log_method()


def _check_shapes(u, dt, A, B, C):
    """Clear errors for wrong ranks or sizes (nothing may broadcast)."""
    for name, x in (("u", u), ("dt", dt), ("A", A), ("B", B), ("C", C)):
        rank = 2 if name == "A" else 3
        if len(x.shape) != rank:
            raise ValueError(
                f"`{name}` must have rank {rank}, got shape {tuple(x.shape)}."
            )

    def differ(x, y):
        return x is not None and y is not None and x != y

    batch, length, d_inner = u.shape
    expected = {
        "dt": ((batch, length, d_inner), dt.shape),
        "A": ((d_inner, A.shape[1]), A.shape),
        "B": ((batch, length, A.shape[1]), B.shape),
        "C": ((batch, length, A.shape[1]), C.shape),
    }
    for name, (want, got) in expected.items():
        if any(differ(w, g) for w, g in zip(want, got)):
            raise ValueError(
                f"`{name}` must have shape {want} to match `u` "
                f"{tuple(u.shape)} and `A` {tuple(A.shape)}, got "
                f"{tuple(got)}."
            )


def selective_scan(
    u, dt, A, B, C, method="auto", chunk_size=None, return_final_state=False
):
    """y_t = C_t h_t with h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t, h_{-1} = 0.

    Everything runs in float32 whatever the input dtypes. The skip term
    D u of Mamba is not included.

    Args:
        u: inputs, `(batch, length, d_inner)`.
        dt: step sizes, `(batch, length, d_inner)`, >= 0 (a step with
            dt = 0 leaves the state unchanged).
        A: diagonal state matrix, `(d_inner, d_state)`, <= 0.
        B: input matrices, `(batch, length, d_state)`.
        C: output matrices, `(batch, length, d_state)`.
        method: `"auto"` (`default_selective_method()`), `"streaming"` or a
            method of `log_linear_recurrence`.
        chunk_size: steps per checkpointed chunk of `"streaming"` (default
            64) or per chunk of `"chunked"` (default ~sqrt(length)).
        return_final_state: also return `h` after the last step,
            `(batch, d_inner, d_state)`: the state a recurrent `step`
            continues from (e.g. after a prompt).

    Returns:
        `y` of shape `(batch, length, d_inner)`, float32, or `(y, h_last)`.

    Example:

    >>> u = dt = ops.ones((1, 3, 2))
    >>> A = -ops.ones((2, 4))
    >>> B = C = ops.ones((1, 3, 4))
    >>> tuple(selective_scan(u, dt * 0.5, A, B, C).shape)
    (1, 3, 2)
    """
    if method not in SELECTIVE_METHODS:
        raise ValueError(
            f"`method` must be one of {SELECTIVE_METHODS}, got {method!r}."
        )
    _check_shapes(u, dt, A, B, C)
    u, dt, A, B, C = (ops.cast(x, "float32") for x in (u, dt, A, B, C))
    if method == "auto":
        method = default_selective_method()
    if method == "streaming":
        if keras.backend.backend() == "jax":
            y, h_last = _streaming(u, dt, A, B, C, chunk_size or STREAM_CHUNK)
            return (y, h_last) if return_final_state else y
        if keras.backend.backend() == "torch":
            y, h_last = _streaming_torch(u, dt, A, B, C)
            return (y, h_last) if return_final_state else y
        method = default_log_method()
    log_decay = dt[..., None] * A  # log exp(dt A): (b, l, d, n)
    drive = (dt * u)[..., None] * B[:, :, None, :]  # (b, l, d, n)
    h = log_linear_recurrence(
        log_decay, drive, method=method, chunk_size=chunk_size
    )
    y = ops.einsum("bldn,bln->bld", h, C)
    return (y, h[:, -1]) if return_final_state else y


def _streaming_torch(u, dt, A, B, C):
    """PyTorch: a Python loop over steps; only (batch, d_inner) outputs kept."""
    import torch

    h = torch.zeros(u.shape[:1] + A.shape, dtype=u.dtype, device=u.device)
    ys = []
    for u_t, dt_t, b_t, c_t in zip(
        *(torch.unbind(x, 1) for x in (u, dt, B, C))
    ):
        h = (
            torch.exp(dt_t[..., None] * A) * h
            + (dt_t * u_t)[..., None] * b_t[:, None, :]
        )
        ys.append(torch.einsum("bdn,bn->bd", h, c_t))
    return torch.stack(ys, 1), h


def _streaming(u, dt, A, B, C, chunk):
    """JAX: a scan over chunks of a checkpointed scan over steps.

    Returns `(y, h_last)`; steps padded to whole chunks have dt = 0, so the
    state passes through them and `h_last` is the state after step L - 1.
    """
    import jax
    import jax.numpy as jnp

    batch, length = u.shape[0], u.shape[1]
    h0 = jnp.zeros((batch,) + A.shape, "float32")

    def one_step(h, step_inputs):
        u_t, dt_t, b_t, c_t = step_inputs
        decay = jnp.exp(dt_t[..., None] * A)
        h = decay * h + (dt_t * u_t)[..., None] * b_t[:, None, :]
        return h, jnp.einsum("bdn,bn->bd", h, c_t)

    if not isinstance(length, int):
        # A symbolic length (a JAX export): padding to whole chunks would
        # give a length that JAX cannot prove equal to L after slicing.
        # Scan the steps directly; only gradients need the checkpoints.
        xs = tuple(jnp.moveaxis(x, 1, 0) for x in (u, dt, B, C))
        h_last, ys = jax.lax.scan(one_step, h0, xs)
        return jnp.moveaxis(ys, 0, 1), h_last
    chunk = max(1, min(chunk, length))
    pad = -length % chunk
    num_chunks = (length + pad) // chunk

    def time_major(x):
        # Padded steps have dt = 0: exp(0 A) = 1 and no drive, so the state
        # passes through them unchanged; their outputs are dropped.
        x = jnp.pad(x, ((0, 0), (0, pad), (0, 0)))
        x = jnp.moveaxis(x, 1, 0)
        return x.reshape((num_chunks, chunk) + x.shape[1:])

    @jax.checkpoint
    def one_chunk(h, chunk_inputs):
        return jax.lax.scan(one_step, h, chunk_inputs)

    xs = tuple(time_major(x) for x in (u, dt, B, C))
    h_last, ys = jax.lax.scan(one_chunk, h0, xs)
    ys = ys.reshape((num_chunks * chunk,) + ys.shape[2:])[:length]
    return jnp.moveaxis(ys, 0, 1), h_last
