"""S4D: the diagonal state space layer (Gu, Gupta, Goel, Re, 2022).

Per channel h, an N-state diagonal complex SSM kept as N/2 conjugate pairs:

    x'(t) = A x(t) + B u(t),   y(t) = 2 Re(C x(t)) + D u(t).

B enters the kernel only through the product C B, so it is folded into C
(B = 1, a learned C), except that the "legs" initialisation starts C B at
the HiPPO-LegS value (see `hippo_legs_input`).

Discretised with step dt (ZOH or bilinear) it unrolls into the convolution
kernel K[l] = 2 Re sum_n C_n dB_n dA_n^l (a Vandermonde product), applied with
an FFT in training mode, or run as a recurrence one step at a time.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_ssm.layers.base import ConvolutionalSSM
from keras_ssm.ops import complex as cplx
from keras_ssm.ops.vandermonde import vandermonde_real
from keras_ssm.utils.validation import check_bool
from keras_ssm.utils.validation import check_choice
from keras_ssm.utils.validation import check_dropout
from keras_ssm.utils.validation import check_dt_range
from keras_ssm.utils.validation import check_float
from keras_ssm.utils.validation import check_initializer
from keras_ssm.utils.validation import check_int
from keras_ssm.utils.validation import check_regularizer

INITS = ("lin", "inv", "real", "legs")
DISCRETIZATIONS = ("zoh", "bilinear")


def hippo_legs_diagonal(d_state):
    """Eigenvalues of the normal part of HiPPO-LegS, upper half-plane.

    LegS is A = S - P P^T with P_n = sqrt(n + 1/2); S = -I/2 + skew, so its
    eigenvalues are -1/2 + i w. Returns the N/2 with w > 0, sorted by w.
    """
    n = np.arange(d_state)
    q = np.sqrt(2 * n + 1.0)
    skew = 0.5 * np.outer(q, q)
    skew = np.tril(skew, -1) - np.triu(skew, 1)  # lower -, upper + halves
    eig = np.linalg.eigvals(-0.5 * np.eye(d_state) - skew)
    eig = eig[eig.imag > 0]
    eig = eig[np.argsort(eig.imag)]
    return eig.real, eig.imag


def hippo_legs_input(d_state, clip=2.0):
    """HiPPO-LegS's B projected onto the eigenvectors of its normal part.

    The S4D "diag-legs" initialisation (S4D paper, Gu et al. 2022; the S4
    reference's `B_init="legs"`): LegS has B_n = sqrt(2n + 1) and A = S -
    P P^T with S = -I/2 + skew normal, P_n = sqrt(n + 1/2). With V the unit
    eigenvectors of S, B' = V^* B; the reference clips Im(B') to
    [-clip, clip] and drops the factor 1/2 that the theory would add.

    Returns the N/2 complex entries (NumPy complex128) in the order of
    `hippo_legs_diagonal` (Im A > 0, ascending). The reference keeps the
    conjugate modes (Im A < 0); conjugating both A and C B leaves the kernel
    2 Re sum C B dB dA^l unchanged, so these are the conjugates of the
    reference's values. Each entry is defined up to its sign (that of its
    eigenvector, which differs between LAPACK builds and between the
    reference's own float32 and float64 runs); the clip is odd, and C is
    drawn from a symmetric law, so the sign does not change the kernel's
    distribution.
    """
    n = np.arange(d_state)
    q = np.sqrt(2 * n + 1.0)
    # The skew part of S, lower triangle -q_i q_j / 2: -i S is Hermitian.
    skew = np.tril(-0.5 * np.outer(q, q), -1)
    skew = skew - skew.T
    freqs, vectors = np.linalg.eigh(-1j * skew)
    order = np.argsort(freqs)[: d_state // 2]  # Im(eig S) < 0, ascending
    b = vectors[:, order].conj().T @ q
    b = b.real + 1j * np.clip(b.imag, -clip, clip)
    # Conjugate modes (Im A > 0), ascending Im A as in hippo_legs_diagonal.
    return np.conj(b)[::-1]


def diagonal_init(init, d_state, freq_scale=1.0):
    """Real and imaginary parts of the N/2 diagonal entries of A.

    - "lin" (S4D-Lin): A_n = -1/2 + i pi n.
    - "inv" (S4D-Inv): A_n = -1/2 + i N/pi (N/(2n+1) - 1).
    - "real" (S4D-Real): A_n = -(n+1).
    - "legs": the diagonal of the normal part of HiPPO-LegS.

    `freq_scale` multiplies the imaginary parts: the initialisation-scaling
    knob of "Tuning Frequency Bias of State Space Models" (Yu et al.).
    """
    half = np.arange(d_state // 2, dtype=np.float64)
    if init == "lin":
        real, imag = np.full_like(half, -0.5), math.pi * half
    elif init == "inv":
        imag = d_state / math.pi * (d_state / (2 * half + 1) - 1)
        real = np.full_like(half, -0.5)
    elif init == "real":
        real, imag = -(half + 1), np.zeros_like(half)
    elif init == "legs":
        real, imag = hippo_legs_diagonal(d_state)
    else:
        raise ValueError(f"`init` must be one of {INITS}, got {init!r}.")
    return real, freq_scale * imag


def _constant(value):
    # A NumPy copy, not ops.broadcast_to: PyTorch would hand back a strided
    # view that in-place weight updates cannot write to.
    def initializer(shape, dtype=None):
        array = np.broadcast_to(np.asarray(value), shape).copy()
        return ops.convert_to_tensor(array, dtype=dtype or "float32")

    return initializer


def sobolev_filter(order):
    """The Sobolev filter (1 + j / J)^order over rfft bins j = 0..J-1.

    `order` > 0 boosts high frequencies, < 0 damps them ("Tuning Frequency
    Bias of State Space Models", Yu et al.). `order` may be a float or a
    per-channel tensor of shape (channels,).

    J is the number of rfft bins, as the paper's formula states; the paper's
    LRA code divides by the FFT length (about 2 J) instead, so the same beta
    tilts the spectrum about twice as strongly here.
    """

    def spectral_filter(num_bins):
        j = ops.cast(ops.arange(num_bins), "float32")
        base = 1.0 + j / ops.cast(num_bins, "float32")
        beta = ops.reshape(ops.cast(order, "float32"), (-1, 1))
        return ops.exp(beta * ops.log(base)[None, :])

    return spectral_filter


@keras.saving.register_keras_serializable(package="keras_ssm")
class S4D(ConvolutionalSSM):
    """Diagonal state space layer (S4D) with FFT convolution and step mode.

    Maps `(batch, length, channels)` to the same shape. Each channel owns a
    `d_state`-dimensional diagonal complex SSM (d_state/2 conjugate pairs),
    with A = -exp(log_A_real) + i A_imag, per-channel step dt =
    exp(log_dt), output C and skip D (B is absorbed into C). Training uses
    the kernel K[l] = 2 Re sum_n C_n dB_n dA_n^l and an FFT convolution in
    float32; `step` runs the same system as a recurrence.

    The SSM parameters (`log_dt`, `log_A_real`, `A_imag`, and the Sobolev
    exponent) are float32 weights that are never autocast and get no weight
    decay from `keras_ssm.optimizers.ssm_adamw`.

    Args:
        d_state: state size N (even, >= 2); N/2 complex modes per channel.
        dt_min: lower bound of the log-uniform initial step.
        dt_max: upper bound of the log-uniform initial step.
        init: "lin" (S4D-Lin), "inv" (S4D-Inv), "real" (S4D-Real) or
            "legs" (S4D-LegS: the diagonal of HiPPO-LegS, with C starting
            at C B for the projected LegS input B, as the S4 reference's
            diag-legs; see `hippo_legs_input`).
        discretization: "zoh" (zero-order hold) or "bilinear".
        bidirectional: add an anti-causal kernel with its own C (no `step`).
        freq_scale: factor on the imaginary parts of A at initialisation
            (frequency-bias tuning; > 1 favours higher frequencies).
        sobolev_order: exponent beta of the Sobolev filter (1 + j/J)^beta on
            the kernel's frequency response; 0 disables it.
        trainable_sobolev: learn a per-channel beta, initialised to
            `sobolev_order`.
        dt_scale: factor on dt at call time (temporal refinement: sampling
            twice as finely goes with `dt_scale=0.5`).
        dropout: dropout rate on the output; the mask is tied over time
            (whole channels are dropped), as the S4D reference's
            `DropoutNd(tie=True)`.
        C_initializer: initializer of the real and imaginary parts of C
            (default normal with variance 1/2 each, i.e. C ~ CN(0, 1)).
        D_initializer: initializer of the skip D (default standard normal).
        C_regularizer: regularizer of the real and imaginary parts of C.
        D_regularizer: regularizer of D.

    Example:

    >>> layer = keras_ssm.layers.S4D(d_state=64)
    >>> x = keras.random.normal((2, 1024, 16))
    >>> y = layer(x)  # (2, 1024, 16)
    >>> y_fine = layer(x, dt_scale=0.5)  # the system sampled twice as finely
    """

    config_arguments = (
        "d_state",
        "dt_min",
        "dt_max",
        "init",
        "discretization",
        "bidirectional",
        "freq_scale",
        "sobolev_order",
        "trainable_sobolev",
        "dt_scale",
        "dropout",
        "C_initializer",
        "D_initializer",
        "C_regularizer",
        "D_regularizer",
    )

    def __init__(
        self,
        d_state=64,
        dt_min=0.001,
        dt_max=0.1,
        init="lin",
        discretization="zoh",
        bidirectional=False,
        freq_scale=1.0,
        sobolev_order=0.0,
        trainable_sobolev=False,
        dt_scale=1.0,
        dropout=0.0,
        C_initializer=None,
        D_initializer="random_normal_unit",
        C_regularizer=None,
        D_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        d_state = check_int("d_state", d_state, minimum=2)
        if d_state % 2:
            raise ValueError(
                f"`d_state` must be an even integer >= 2, got {d_state!r}."
            )
        dt_min, dt_max = check_dt_range(dt_min, dt_max)
        self.d_state = d_state
        self.dt_min = dt_min
        self.dt_max = dt_max
        self.init = check_choice("init", init, INITS)
        self.discretization = check_choice(
            "discretization", discretization, DISCRETIZATIONS
        )
        self.bidirectional = check_bool("bidirectional", bidirectional)
        self.freq_scale = check_float(
            "freq_scale", freq_scale, minimum=0.0, min_open=True
        )
        self.sobolev_order = check_float("sobolev_order", sobolev_order)
        self.trainable_sobolev = check_bool(
            "trainable_sobolev", trainable_sobolev
        )
        self.dt_scale = check_float(
            "dt_scale", dt_scale, minimum=0.0, min_open=True
        )
        self.dropout = check_dropout("dropout", dropout)
        if C_initializer is None:
            C_initializer = keras.initializers.RandomNormal(
                stddev=math.sqrt(0.5)
            )
        if D_initializer == "random_normal_unit":
            D_initializer = keras.initializers.RandomNormal(stddev=1.0)
        self.C_initializer = check_initializer("C_initializer", C_initializer)
        self.D_initializer = check_initializer("D_initializer", D_initializer)
        self.C_regularizer = check_regularizer("C_regularizer", C_regularizer)
        self.D_regularizer = check_regularizer("D_regularizer", D_regularizer)
        # One mask per (sequence, channel), tied over time, as the S4D
        # reference's DropoutNd(tie=True).
        self.dropout_layer = keras.layers.SpatialDropout1D(
            self.dropout, dtype=self.dtype_policy
        )

    def build(self, input_shape):
        channels = self._validate_input_shape(input_shape)
        self.channels = channels
        modes = self.d_state // 2
        directions = 2 if self.bidirectional else 1
        real, imag = diagonal_init(self.init, self.d_state, self.freq_scale)
        self.log_dt = self.add_ssm_weight(
            "log_dt",
            (channels,),
            keras.initializers.RandomUniform(
                math.log(self.dt_min), math.log(self.dt_max)
            ),
        )
        self.log_A_real = self.add_ssm_weight(
            "log_A_real", (channels, modes), _constant(np.log(-real))
        )
        self.A_imag = self.add_ssm_weight(
            "A_imag", (channels, modes), _constant(imag)
        )
        self.C_real = self.add_weight(
            name="C_real",
            shape=(directions, channels, modes),
            initializer=self.C_initializer,
            regularizer=self.C_regularizer,
        )
        self.C_imag = self.add_weight(
            name="C_imag",
            shape=(directions, channels, modes),
            initializer=self.C_initializer,
            regularizer=self.C_regularizer,
        )
        if self.init == "legs":
            self._fold_legs_input_into_C()
        self.D = self.add_weight(
            name="D",
            shape=(channels,),
            initializer=self.D_initializer,
            regularizer=self.D_regularizer,
        )
        if self.trainable_sobolev:
            self.sobolev_beta = self.add_ssm_weight(
                "sobolev_beta", (channels,), _constant(self.sobolev_order)
            )
        else:
            self.sobolev_beta = None

    def _fold_legs_input_into_C(self):
        # C B with B the projected HiPPO-LegS input (hippo_legs_input): the
        # kernel of the reference's diag-legs layer with the same random C.
        b = hippo_legs_input(self.d_state)
        b_real = ops.convert_to_tensor(b.real, "float32")
        b_imag = ops.convert_to_tensor(b.imag, "float32")
        c_real = ops.convert_to_tensor(self.C_real)
        c_imag = ops.convert_to_tensor(self.C_imag)
        # Both products before either assignment: on PyTorch the tensors
        # above share the variables' storage.
        new_real = c_real * b_real - c_imag * b_imag
        new_imag = c_real * b_imag + c_imag * b_real
        self.C_real.assign(new_real)
        self.C_imag.assign(new_imag)

    # -- the SSM in discrete time --------------------------------------------

    def _A(self):
        return -ops.exp(self.log_A_real), ops.convert_to_tensor(self.A_imag)

    def discretize(self, dt_scale=None):
        """Returns log(dA), dB (complex pairs, (channels, d_state/2)).

        ZOH: dA = exp(dt A), dB = (exp(dt A) - 1) / A.
        Bilinear: dA = (1 + dt A/2) / (1 - dt A/2), dB = dt / (1 - dt A/2).
        """
        scale = self.dt_scale if dt_scale is None else dt_scale
        dt = ops.exp(self.log_dt)[:, None] * scale
        A = self._A()
        dtA = cplx.cscale(A, dt)
        if self.discretization == "zoh":
            log_dA = dtA
            dB = cplx.cdiv(cplx.csub(cplx.cexp(dtA), (1.0, 0.0)), A)
        else:
            half = cplx.cscale(dtA, 0.5)
            denom = cplx.csub((1.0, 0.0), half)
            dA = cplx.cdiv(cplx.cadd((1.0, 0.0), half), denom)
            log_dA = cplx.clog(dA)
            dB = cplx.cdiv((dt, ops.zeros_like(dt)), denom)
        return log_dA, dB

    def kernel(self, length, dt_scale=None):
        """The convolution kernel, shape (directions, channels, length).

        K[l] = 2 Re sum_n C_n dB_n dA_n^l, a Vandermonde product in float32.
        """
        log_dA, dB = self.discretize(dt_scale)
        C = (self.C_real, self.C_imag)
        CB = cplx.cmul(C, (dB[0][None], dB[1][None]))
        return 2.0 * vandermonde_real(CB, log_dA, length)

    def spectral_filter(self):
        """The Sobolev filter of the kernel, or None when disabled."""
        if self.sobolev_beta is not None:
            return sobolev_filter(self.sobolev_beta)
        if self.sobolev_order != 0.0:
            return sobolev_filter(self.sobolev_order)
        return None

    def shortcut_gain(self):
        """The skip weight D, shape (channels,)."""
        return self.D

    @property
    def mode_shape(self):
        return (self.d_state // 2,)

    # -- recurrent mode --------------------------------------------------------

    def step(self, inputs_t, state, dt_scale=None):
        """One recurrent step: x = dA x + dB u, y = 2 Re(C x) + D u.

        Args:
            inputs_t: tensor of shape `(batch, channels)`.
            state: the pair returned by `get_initial_state` or `step`.
            dt_scale: optional factor on dt (defaults to `self.dt_scale`).

        Returns:
            `(outputs_t, new_state)`, outputs of shape `(batch, channels)`.
        """
        self._check_step_inputs(inputs_t)
        if self.sobolev_beta is not None or self.sobolev_order != 0.0:
            raise ValueError(
                "S4D.step is not defined with a Sobolev filter "
                "(sobolev_order != 0): the filtered kernel has no state-space "
                "recurrence."
            )
        out_dtype = self.compute_dtype
        u = ops.cast(inputs_t, "float32")
        log_dA, dB = self.discretize(dt_scale)
        dA = cplx.cexp(log_dA)
        drive = cplx.cscale(dB, u[..., None])
        x = cplx.cadd(cplx.cmul(dA, state), drive)
        y = 2.0 * ops.sum(
            self.C_real[0] * x[0] - self.C_imag[0] * x[1], axis=-1
        )
        y = y + self.D * u
        return ops.cast(y, out_dtype), x
