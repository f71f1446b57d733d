"""Complex arithmetic on (real, imag) pairs of real tensors.

`keras.ops` has no complex dtype that works on every backend (a complex
trainable weight fails `fit` on PyTorch and JAX never updates its imaginary
part), so complex numbers travel as tuples `(re, im)` of real tensors. These
helpers keep the formulas in the layers readable.
"""

from keras import ops


def cadd(a, b):
    """(a_re + b_re) + i (a_im + b_im)."""
    return a[0] + b[0], a[1] + b[1]


def csub(a, b):
    """(a_re - b_re) + i (a_im - b_im)."""
    return a[0] - b[0], a[1] - b[1]


def cmul(a, b):
    """Complex product a * b."""
    return a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0]


def cscale(a, s):
    """Product of a complex pair with a real tensor `s`."""
    return a[0] * s, a[1] * s


def cconj(a):
    """Complex conjugate."""
    return a[0], -a[1]


def cabs2(a):
    """Squared modulus |a|^2."""
    return a[0] * a[0] + a[1] * a[1]


def cdiv(a, b):
    """Complex quotient a / b."""
    denom = cabs2(b)
    num = cmul(a, cconj(b))
    return num[0] / denom, num[1] / denom


def cexp(a):
    """exp(a_re + i a_im) = exp(a_re) (cos a_im + i sin a_im)."""
    modulus = ops.exp(a[0])
    return modulus * ops.cos(a[1]), modulus * ops.sin(a[1])


def clog(a):
    """Principal logarithm: log|a| + i arg(a)."""
    return 0.5 * ops.log(cabs2(a)), ops.arctan2(a[1], a[0])


def cpow_real(a, n):
    """a ** n for a real exponent tensor `n`, via exp(n log a)."""
    return cexp(cscale(clog(a), n))


def cast_pair(a, dtype):
    """Casts both parts of a complex pair to `dtype`."""
    return ops.cast(a[0], dtype), ops.cast(a[1], dtype)
