"""The linear recurrence h_t = a_t * h_{t-1} + b_t along the time axis.

Several implementations of the same recurrence, on real float32 tensors of
shape `(batch, length, ...)`; complex recurrences run on (real, imag) pairs
with the complex product written out, because PyTorch's `associative_scan`
drops imaginary parts and downcasts float64.

- `"sequential"`: one step at a time; the reference path. On PyTorch a
  Python loop over `torch.unbind` (the backward of `ops.scan` there is
  quadratic in length); on TensorFlow `tf.scan` (its bounded while loop is
  differentiable under XLA, keras' `ops.scan` is not); on JAX `lax.scan`.
- `"associative"`: `ops.associative_scan` with the operator
  (a1, b1) o (a2, b2) = (a2 a1, a2 b1 + b2); O(log L) depth. On JAX this is
  `jax.lax.associative_scan` itself (the optional JAX fast path). It does
  not compile under XLA on TensorFlow (lengths >= 4): never a default.
- `"chunked"`: a two-level scan over chunks of T steps: (1) one scan over
  the T steps of all L/T chunks at once gives each chunk's zero-start
  states and decay products P_t = prod_{s<=t} a_s; (2) a scan over the L/T
  chunk ends gives the carries c_k = P_k c_{k-1} + h_k; (3) h_t = local_t +
  P_t c_{k-1} for all steps at once. O(L) work and memory, T + L/T
  sequential steps (T ~ sqrt(L)); compiles under XLA on TensorFlow, is
  differentiable on JAX, and its PyTorch backward stays linear.
- `"logspace"` (`log_linear_recurrence` only, decays given as log a_t):
  closed-form cumulative sums within chunks of 8 steps, applied again to
  the chunk carries: no loop over time at static lengths, O(L) work.
- `"auto"`: `default_method()` / `default_log_method()`: sequential on CPU
  with JAX and PyTorch; chunked / logspace on TensorFlow and on GPU/TPU.

Why: forward + backward of mean(h^2), 2-core x86 CPU, keras 3.15 (JAX jit,
TF graph, PyTorch eager), seconds per step, log-decay inputs, ratios within
one process, idle machine (`benchmarks/bench_scan.py`; the rows marked *
ran beside other jobs):

    backend  batch x channels  length  sequential  chunked  logspace
    jax      8 x 4096          2048       1.47       3.61      2.41
    jax      8 x 256           2048       0.106      0.199     0.105
    jax      2 x 256           8192       0.104      0.191     0.108
    torch    8 x 4096          2048       1.70       5.85      6.03
    torch    8 x 256           2048       0.135      0.149     0.141
    torch    2 x 256           8192       0.477      0.176     0.168
    tf       8 x 4096          2048       4.41      14.9       8.43
    tf       8 x 256           2048       0.614      0.849     0.365
    tf       2 x 256           8192       4.39       0.633     0.230
    tf *     8 x 256           1024       0.495       -        0.623
    tf *     8 x 256           4096       5.04        -        2.35
    tf *     8 x 256           8192      21.4         -        4.96

On CPU the sequential scan is the fastest path on JAX and PyTorch unless a
step is tiny (2 x 256 channels): its steps are cheap and the parallel forms
do 2-4x more memory traffic. A parallel scan beats the sequential one by a
wide margin on CPU only on TensorFlow, whose
`tf.scan` grows about quadratically with length (its gradient); there the
log-space scan is linear and 4.3x faster at 8k steps. The parallel forms
pay off where one step costs a kernel launch, i.e. on accelerators. Memory
is linear in length for every path (see the benchmark's peak-memory column).

Mamba's layer does not call these directly but `keras_ssm.ops.selective_scan`,
which on JAX's CPU backend beats all of them by forming each step's decay,
drive and readout inside the loop ("streaming", 4-6x faster than
"sequential" at 512-8192 steps).
"""

import math

import keras
from keras import ops

METHODS = ("auto", "sequential", "associative", "chunked")
LOG_METHODS = METHODS + ("logspace",)

# Steps per chunk of the log-space scan and the floor of log a_t there: a
# chunk's log-decays then span at most (T - 1) * 17 = 119, so with the
# reference at the middle of that span no exp() exceeds e^60 (float32 ends
# at e^88), and a decay below e^-17 (4e-8, under float32's half-ulp 6e-8)
# changes no state by more than rounding does.
LOG_CHUNK = 8
LOG_FLOOR = -17.0


# -- element algebra: real tensors are 1-tuples, complex ones (re, im) pairs --


def _real_mul(x, y):
    return (x[0] * y[0],)


def _complex_mul(x, y):
    return (x[0] * y[0] - x[1] * y[1], x[0] * y[1] + x[1] * y[0])


def _fma(mul, a, h, b):
    """a * h + b for tuples of tensors under the product `mul`."""
    return tuple(p + q for p, q in zip(mul(a, h), b))


def _time_slice(parts, start, stop=None):
    return tuple(x[:, start:stop] if stop else x[:, start] for x in parts)


# -- the three implementations -------------------------------------------------


def _sequential(a, b, mul):
    """Step-by-step recurrence over axis 1 from a zero state."""
    if keras.backend.backend() == "torch":
        import torch

        h = tuple(torch.zeros_like(x[:, 0]) for x in b)
        outputs = []
        for a_t, b_t in zip(
            zip(*(torch.unbind(x, 1) for x in a)),
            zip(*(torch.unbind(x, 1) for x in b)),
        ):
            h = _fma(mul, a_t, h, b_t)
            outputs.append(h)
        return tuple(torch.stack(parts, 1) for parts in zip(*outputs))

    # One stacked (L, 2n, batch, ...) input: keras' TF scan fails on several
    # inputs of unknown length.
    xs = ops.stack([ops.moveaxis(x, 1, 0) for x in a + b], axis=1)
    init = tuple(ops.zeros_like(x[:, 0]) for x in b)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # tf.scan bounds its while loop (maximum_iterations), which XLA
        # needs to differentiate it; keras' TF scan does not.
        step = _step_fn(mul)
        hs = tf.scan(lambda h, ab: step(h, ab)[0], xs, initializer=init)
    else:
        _, hs = ops.scan(_step_fn(mul), init, xs)
    return tuple(ops.moveaxis(x, 0, 1) for x in hs)


def _step_fn(mul):
    """The scan body h, (a_t, b_t) -> h: one function object per algebra,
    so that eager JAX reuses its compiled scan across calls."""
    if mul not in _STEP_FNS:
        n = 2 if mul is _complex_mul else 1

        def step(h, ab):
            a_t = tuple(ab[i] for i in range(n))
            b_t = tuple(ab[n + i] for i in range(n))
            h = _fma(mul, a_t, h, b_t)
            return h, h

        _STEP_FNS[mul] = step
    return _STEP_FNS[mul]


def _combine_fn(mul):
    """(a1, b1) o (a2, b2) = (a2 a1, a2 b1 + b2), one object per algebra."""
    if mul not in _COMBINE_FNS:
        n = 2 if mul is _complex_mul else 1

        def combine(left, right):
            a1, b1, a2, b2 = left[:n], left[n:], right[:n], right[n:]
            return mul(a2, a1) + _fma(mul, a2, b1, b2)

        _COMBINE_FNS[mul] = combine
    return _COMBINE_FNS[mul]


_STEP_FNS = {}
_COMBINE_FNS = {}


def _associative(a, b, mul):
    n = len(a)
    out = ops.associative_scan(_combine_fn(mul), a + b, axis=1)[n:]
    if keras.backend.backend() == "tensorflow":
        for h, x in zip(out, b):
            h.set_shape(x.shape)  # tf's associative_scan loses static shapes
    return out


def default_chunk_size(length):
    """About sqrt(length), a power of two in [8, 64] (32 if unknown)."""
    if length is None or not isinstance(length, int):
        return 32
    power = round(math.log2(max(length, 1)) / 2)
    return int(min(max(2**power, 8), 64))


def _dim(x, axis):
    """Static size of `x` along `axis` if known, else a dynamic scalar."""
    size = x.shape[axis]
    return size if size is not None else ops.shape(x)[axis]


def _chunked(a, b, mul, identity, chunk):
    """Two-level scan: scans within chunks, a scan across chunks, a fix-up."""
    batch, length = _dim(b[0], 0), _dim(b[0], 1)
    rest = tuple(b[0].shape[2:])
    pad = (-length) % chunk
    if not (isinstance(pad, int) and pad == 0):
        # Identity steps (a = 1, b = 0) at the end change no earlier state.
        widths = [[0, 0], [0, pad]] + [[0, 0]] * len(rest)
        a = tuple(
            ops.pad(x, widths, constant_values=v) for x, v in zip(a, identity)
        )
        b = tuple(ops.pad(x, widths, constant_values=0.0) for x in b)
    # (batch, K * T, ...) -> (batch * K, T, ...): every chunk is a row.
    a = tuple(ops.reshape(x, (-1, chunk) + rest) for x in a)
    b = tuple(ops.reshape(x, (-1, chunk) + rest) for x in b)

    # (1) In every chunk from a zero state, in one scan: the local states
    # and the decay products P_t = prod_{s<=t} a_s (the recurrence
    # P_t = a_t P_{t-1} with P_{-1} = 1, i.e. input a_0 at t = 0).
    first = tuple(
        ops.concatenate([x[:, :1], ops.zeros_like(x[:, 1:])], axis=1) for x in a
    )
    both = _sequential(
        tuple(ops.stack([x, x], axis=2) for x in a),
        tuple(ops.stack([x, f], axis=2) for x, f in zip(b, first)),
        mul,
    )
    local = tuple(x[:, :, 0] for x in both)
    decay = tuple(x[:, :, 1] for x in both)

    # (2) Carries across chunks: c_k = P_k c_{k-1} + local_k at chunk ends.
    def per_sequence(x):
        return ops.reshape(x[:, -1], (batch, -1) + rest)

    carries = _sequential(
        tuple(per_sequence(x) for x in decay),
        tuple(per_sequence(x) for x in local),
        mul,
    )
    carry_in = tuple(
        ops.reshape(
            ops.concatenate([ops.zeros_like(c[:, :1]), c[:, :-1]], axis=1),
            (-1, 1) + rest,
        )
        for c in carries
    )

    # (3) h_t = local_t + P_t c_{k-1}: all steps at once.
    out = _fma(mul, decay, carry_in, local)
    out = tuple(ops.reshape(x, (batch, -1) + rest) for x in out)
    if not (isinstance(pad, int) and pad == 0):
        out = tuple(x[:, :length] for x in out)
    return out


def _logspace(log_a, b):
    """Closed form within chunks of `LOG_CHUNK` steps, recursing on carries.

    In a chunk, with S_t = sum_{s<=t} log a_s (from the chunk start) and a
    reference m halfway through the range of S:
        local_t = e^(S_t - m) * cumsum_s(e^(m - S_s) b_s)
                = sum_{s<=t} (prod_{s<r<=t} a_r) b_s,
    the states from a zero start, by two cumsums and no loop. The carries
    c_k = e^(S_end) c_{k-1} + local_end are the same recurrence, L/T long,
    with log-decay S_end: solved by the same function, down to a length of
    at most T, then h_t = local_t + e^(S_t) c_{k-1}. Work O(L), depth
    O(T log_T L). Unknown lengths take one level and a sequential scan of
    the carries.
    """
    batch, length = _dim(b, 0), _dim(b, 1)
    if isinstance(length, int) and length <= LOG_CHUNK:
        (h,) = _sequential((ops.exp(log_a),), (b,), _real_mul)
        return h
    rest = tuple(b.shape[2:])
    pad = (-length) % LOG_CHUNK
    if not (isinstance(pad, int) and pad == 0):
        widths = [[0, 0], [0, pad]] + [[0, 0]] * len(rest)
        log_a = ops.pad(log_a, widths)  # a = 1, b = 0: nothing changes
        b = ops.pad(b, widths)
    shape = (batch, -1, LOG_CHUNK) + rest
    log_a = ops.reshape(ops.maximum(log_a, LOG_FLOOR), shape)
    b = ops.reshape(b, shape)
    cum = ops.cumsum(log_a, axis=2)
    mid = 0.5 * (cum[:, :, :1] + cum[:, :, -1:])
    local = ops.exp(cum - mid) * ops.cumsum(ops.exp(mid - cum) * b, axis=2)
    if isinstance(length, int):
        carries = _logspace(cum[:, :, -1], local[:, :, -1])
    else:
        (carries,) = _sequential(
            (ops.exp(cum[:, :, -1]),), (local[:, :, -1],), _real_mul
        )
    carry_in = ops.concatenate(
        [ops.zeros_like(carries[:, :1]), carries[:, :-1]], axis=1
    )
    h = local + ops.exp(cum) * ops.expand_dims(carry_in, 2)
    h = ops.reshape(h, (batch, -1) + rest)
    if not (isinstance(pad, int) and pad == 0):
        h = h[:, :length]
    return h


def on_accelerator():
    """True where the current backend computes on a GPU/TPU, not the CPU."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    return False


def default_method():
    """The recurrence implementation used by `method="auto"`.

    `"sequential"` on CPU with JAX and PyTorch, where it was the fastest
    path at every width measured (module docstring); `"chunked"` on
    TensorFlow, whose sequential scan grows faster than linearly with length,
    and on accelerators, where the sequential path pays one kernel launch per
    step and the chunked one about 2 sqrt(L).
    """
    if on_accelerator() or keras.backend.backend() == "tensorflow":
        return "chunked"
    return "sequential"


def _run(a, b, mul, identity, method, chunk_size):
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}.")
    if chunk_size is not None and (
        not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(
            f"`chunk_size` must be a positive integer, got {chunk_size!r}."
        )
    if method == "auto":
        method = default_method()
    if method == "sequential":
        return _sequential(a, b, mul)
    if method == "associative":
        return _associative(a, b, mul)
    length = b[0].shape[1]
    chunk = chunk_size or default_chunk_size(length)
    return _chunked(a, b, mul, identity, chunk)


def _check_rank(name, x):
    if len(x.shape) < 2:
        raise ValueError(
            f"`{name}` must have shape (batch, length, ...), i.e. rank >= 2; "
            f"got shape {tuple(x.shape)}."
        )


def linear_recurrence(
    a, b, initial_state=None, reverse=False, method="auto", chunk_size=None
):
    """Computes h_t = a_t * h_{t-1} + b_t for t = 0..L-1 (h_{-1} = state).

    Runs in float32 whatever the input dtypes (mixed precision keeps the
    scan in float32).

    Args:
        a: decay tensor of shape `(batch, length, ...)`, or broadcastable to
            the shape of `b`.
        b: input tensor of shape `(batch, length, ...)`.
        initial_state: optional `(batch, ...)` tensor for h_{-1} (zeros if
            None).
        reverse: run the recurrence from the last step to the first.
        method: `"auto"`, `"sequential"`, `"associative"` or `"chunked"`.
        chunk_size: steps per chunk of the `"chunked"` method (default about
            sqrt(length)).

    Returns:
        All states `h`, float32, shape of `b`.

    Example:

    >>> a = ops.full((1, 4, 1), 0.5)
    >>> b = ops.ones((1, 4, 1))
    >>> ops.convert_to_numpy(linear_recurrence(a, b)[0, :, 0])
    array([1.   , 1.5  , 1.75 , 1.875], dtype=float32)
    """
    _check_rank("b", b)
    a = ops.cast(a, "float32")
    b = ops.cast(b, "float32")
    a = ops.broadcast_to(a, ops.shape(b))
    if reverse:
        a, b = ops.flip(a, axis=1), ops.flip(b, axis=1)
    if initial_state is not None:
        state = ops.expand_dims(ops.cast(initial_state, "float32"), 1)
        first = a[:, :1] * state + b[:, :1]
        b = ops.concatenate([first, b[:, 1:]], axis=1)
    (h,) = _run((a,), (b,), _real_mul, (1.0,), method, chunk_size)
    return ops.flip(h, axis=1) if reverse else h


def complex_linear_recurrence(
    a, b, initial_state=None, reverse=False, method="auto", chunk_size=None
):
    """`linear_recurrence` for complex (real, imag) pairs `a`, `b`.

    Runs on real float32 tensors with the complex product expanded by hand:
    (ar + i ai)(hr + i hi) = (ar hr - ai hi) + i (ar hi + ai hr).

    Args:
        a: (real, imag) pair of decay tensors, broadcastable to `b`'s parts.
        b: (real, imag) pair of `(batch, length, ...)` input tensors.
        initial_state: optional (real, imag) pair of `(batch, ...)` tensors.
        reverse: run the recurrence from the last step to the first.
        method: `"auto"`, `"sequential"`, `"associative"` or `"chunked"`.
        chunk_size: steps per chunk of the `"chunked"` method.

    Returns:
        The (real, imag) pair of all states, float32.

    Example:

    >>> a = (ops.zeros((1, 3, 1)), ops.ones((1, 3, 1)))  # a = i
    >>> b = (ops.ones((1, 3, 1)), ops.zeros((1, 3, 1)))
    >>> h_re, h_im = complex_linear_recurrence(a, b)  # 1, 1 + i, i
    """
    _check_rank("b", b[0])
    b = tuple(ops.cast(x, "float32") for x in b)
    a = tuple(
        ops.broadcast_to(ops.cast(x, "float32"), ops.shape(b[0])) for x in a
    )
    if reverse:
        a = tuple(ops.flip(x, axis=1) for x in a)
        b = tuple(ops.flip(x, axis=1) for x in b)
    if initial_state is not None:
        state = tuple(
            ops.expand_dims(ops.cast(x, "float32"), 1) for x in initial_state
        )
        first = _fma(
            _complex_mul, _time_slice(a, 0, 1), state, _time_slice(b, 0, 1)
        )
        b = tuple(
            ops.concatenate([f, x[:, 1:]], axis=1) for f, x in zip(first, b)
        )
    h = _run(a, b, _complex_mul, (1.0, 0.0), method, chunk_size)
    if reverse:
        h = tuple(ops.flip(x, axis=1) for x in h)
    return h


def log_linear_recurrence(
    log_a, b, initial_state=None, reverse=False, method="auto", chunk_size=None
):
    """`linear_recurrence` with the decay given by its log, log a_t <= 0.

    h_t = exp(log_a_t) * h_{t-1} + b_t. Knowing log a_t allows one more
    method, `"logspace"`: closed-form cumulative sums within chunks of 8
    steps, applied again to the chunk carries (see `_logspace`), which needs
    no loop over time for static lengths. Decays below e^-17 are raised to
    e^-17 there (a change below float32 rounding of the state). The other
    methods run `linear_recurrence` on exp(log_a).

    Args:
        log_a: log of the decay, `(batch, length, ...)` or broadcastable to
            the shape of `b`; values must be <= 0 (decays in (0, 1]).
        b: input tensor of shape `(batch, length, ...)`.
        initial_state: optional `(batch, ...)` tensor for h_{-1}.
        reverse: run the recurrence from the last step to the first.
        method: `"auto"`, `"logspace"`, `"sequential"`, `"associative"` or
            `"chunked"`; `"auto"` is `default_log_method()`.
        chunk_size: steps per chunk of the `"chunked"` method.

    Returns:
        All states `h`, float32, shape of `b`.

    Example:

    >>> log_a = ops.full((1, 4, 1), math.log(0.5))
    >>> h = log_linear_recurrence(log_a, ops.ones((1, 4, 1)))
    >>> np.round(ops.convert_to_numpy(h[0, :, 0]), 4)
    array([1.   , 1.5  , 1.75 , 1.875], dtype=float32)
    """
    if method not in LOG_METHODS:
        raise ValueError(
            f"`method` must be one of {LOG_METHODS}, got {method!r}."
        )
    if method == "auto":
        method = default_log_method()
    if method != "logspace":
        return linear_recurrence(
            ops.exp(ops.cast(log_a, "float32")),
            b,
            initial_state=initial_state,
            reverse=reverse,
            method=method,
            chunk_size=chunk_size,
        )
    _check_rank("b", b)
    b = ops.cast(b, "float32")
    log_a = ops.broadcast_to(ops.cast(log_a, "float32"), ops.shape(b))
    if reverse:
        log_a, b = ops.flip(log_a, axis=1), ops.flip(b, axis=1)
    if initial_state is not None:
        state = ops.expand_dims(ops.cast(initial_state, "float32"), 1)
        first = ops.exp(log_a[:, :1]) * state + b[:, :1]
        b = ops.concatenate([first, b[:, 1:]], axis=1)
    h = _logspace(log_a, b)
    return ops.flip(h, axis=1) if reverse else h


def default_log_method():
    """The method `log_linear_recurrence` uses for `method="auto"`.

    `"sequential"` on CPU with JAX and PyTorch (fastest there, linear in
    length); `"logspace"` on TensorFlow, whose sequential scan grows about
    quadratically with length (8 x 256 channels: 0.50 / 5.0 / 21.4 s at
    1k / 4k / 8k steps, against 0.62 / 2.3 / 5.0 s), and on accelerators,
    where it needs a few kernels per level instead of one per step
    (unmeasured on GPUs so far).
    """
    if on_accelerator() or keras.backend.backend() == "tensorflow":
        return "logspace"
    return "sequential"
