"""The linear recurrence h_t = a_t * h_{t-1} + b_t along the time axis.

Three implementations of the same recurrence, on real float32 tensors of shape
`(batch, length, ...)` (complex recurrences run on (real, imag) pairs):

- `"sequential"`: one step at a time. On PyTorch a Python loop over
  `torch.unbind` (the backward of `ops.scan` there is quadratic in length);
  elsewhere `ops.scan`.
- `"associative"`: `ops.associative_scan` with the operator
  (a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2); O(L log L) work, O(log L) depth.
- `"auto"`: the fastest correct path for the current backend.
"""

import keras
from keras import ops

METHODS = ("auto", "sequential", "associative")


def _combine(left, right):
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, a2 * b1 + b2


def _with_initial_state(a, b, initial_state):
    if initial_state is None:
        return b
    first = a[:, :1] * ops.expand_dims(initial_state, 1) + b[:, :1]
    return ops.concatenate([first, b[:, 1:]], axis=1)


def _sequential(a, b):
    if keras.backend.backend() == "torch":
        import torch

        h = torch.zeros_like(b[:, 0])
        outputs = []
        for a_t, b_t in zip(torch.unbind(a, 1), torch.unbind(b, 1)):
            h = a_t * h + b_t
            outputs.append(h)
        return torch.stack(outputs, 1)

    def step(h, ab):
        h = ab[0] * h + ab[1]
        return h, h

    a_t = ops.moveaxis(a, 1, 0)
    b_t = ops.moveaxis(b, 1, 0)
    _, hs = ops.scan(step, ops.zeros_like(b_t[0]), (a_t, b_t))
    return ops.moveaxis(hs, 0, 1)


def _associative(a, b):
    _, h = ops.associative_scan(_combine, (a, b), axis=1)
    if keras.backend.backend() == "tensorflow":
        h.set_shape(b.shape)
    return h


def default_method():
    """The recurrence implementation used by `method="auto"`."""
    return "sequential"


def linear_recurrence(a, b, initial_state=None, reverse=False, method="auto"):
    """Computes h_t = a_t * h_{t-1} + b_t for t = 0..L-1 (h_{-1} = state).

    Args:
        a: decay tensor of shape `(batch, length, ...)`.
        b: input tensor broadcastable to the shape of `a`.
        initial_state: optional `(batch, ...)` tensor for h_{-1} (zeros if
            None).
        reverse: run the recurrence from the last step to the first.
        method: one of `"auto"`, `"sequential"`, `"associative"`.

    Returns:
        All states `h`, shape of `b`, float32.

    Example:

    >>> a = ops.full((1, 4, 1), 0.5)
    >>> b = ops.ones((1, 4, 1))
    >>> linear_recurrence(a, b)[0, :, 0]  # 1, 1.5, 1.75, 1.875
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}.")
    a = ops.cast(a, "float32")
    b = ops.cast(b, "float32")
    a, b = ops.broadcast_to(a, ops.shape(b)), b
    if reverse:
        a, b = ops.flip(a, axis=1), ops.flip(b, axis=1)
    b = _with_initial_state(a, b, initial_state)
    if method == "auto":
        method = default_method()
    h = _sequential(a, b) if method == "sequential" else _associative(a, b)
    return ops.flip(h, axis=1) if reverse else h


def complex_linear_recurrence(
    a, b, initial_state=None, reverse=False, method="auto"
):
    """`linear_recurrence` for complex (real, imag) pairs `a`, `b`.

    Runs on real float32 tensors: the real and imaginary parts are stacked in
    a trailing axis and the complex product is expanded by hand.
    """
    a_re, a_im = (ops.cast(x, "float32") for x in a)
    b_re, b_im = (ops.cast(x, "float32") for x in b)
    a_re = ops.broadcast_to(a_re, ops.shape(b_re))
    a_im = ops.broadcast_to(a_im, ops.shape(b_re))
    if reverse:
        a_re, a_im, b_re, b_im = (
            ops.flip(x, axis=1) for x in (a_re, a_im, b_re, b_im)
        )
    if initial_state is not None:
        s_re, s_im = (ops.expand_dims(x, 1) for x in initial_state)
        first_re = a_re[:, :1] * s_re - a_im[:, :1] * s_im + b_re[:, :1]
        first_im = a_re[:, :1] * s_im + a_im[:, :1] * s_re + b_im[:, :1]
        b_re = ops.concatenate([first_re, b_re[:, 1:]], axis=1)
        b_im = ops.concatenate([first_im, b_im[:, 1:]], axis=1)

    def combine(left, right):
        (ar1, ai1, br1, bi1), (ar2, ai2, br2, bi2) = left, right
        return (
            ar1 * ar2 - ai1 * ai2,
            ar1 * ai2 + ai1 * ar2,
            ar2 * br1 - ai2 * bi1 + br2,
            ar2 * bi1 + ai2 * br1 + bi2,
        )

    if method == "auto":
        method = default_method()
    if method == "associative":
        *_, h_re, h_im = ops.associative_scan(
            combine, (a_re, a_im, b_re, b_im), axis=1
        )
    else:
        h_re, h_im = _complex_sequential(a_re, a_im, b_re, b_im)
    if reverse:
        h_re, h_im = ops.flip(h_re, axis=1), ops.flip(h_im, axis=1)
    return h_re, h_im


def _complex_sequential(a_re, a_im, b_re, b_im):
    # Stack (re, im) so one real recurrence carries both parts.
    if keras.backend.backend() == "torch":
        import torch

        h_re = torch.zeros_like(b_re[:, 0])
        h_im = torch.zeros_like(b_im[:, 0])
        out_re, out_im = [], []
        for ar, ai, br, bi in zip(
            *(torch.unbind(x, 1) for x in (a_re, a_im, b_re, b_im))
        ):
            h_re, h_im = ar * h_re - ai * h_im + br, ar * h_im + ai * h_re + bi
            out_re.append(h_re)
            out_im.append(h_im)
        return torch.stack(out_re, 1), torch.stack(out_im, 1)

    def step(h, x):
        ar, ai, br, bi = x
        h_re = ar * h[0] - ai * h[1] + br
        h_im = ar * h[1] + ai * h[0] + bi
        return (h_re, h_im), (h_re, h_im)

    xs = tuple(ops.moveaxis(x, 1, 0) for x in (a_re, a_im, b_re, b_im))
    init = (ops.zeros_like(xs[2][0]), ops.zeros_like(xs[3][0]))
    _, (h_re, h_im) = ops.scan(step, init, xs)
    return ops.moveaxis(h_re, 0, 1), ops.moveaxis(h_im, 0, 1)
