"""CES: the complex exponential smoothing module of ETSMLP.

From Chu & Lin, "Incorporating Exponential Smoothing into MLP: A Simple but
Effective Sequence Model" (2024). Per channel, a complex exponential
smoothing of the input

    y_t = (1 - lambda^alpha) beta x_t + lambda^alpha y_{t-1},

whose real part, added to a gated shortcut, is the output:

    o_t = sigmoid(omega) x_t + Re(y_t) = sigmoid(omega) x_t + (k * x)_t,
    k[n] = Re(beta (1 - lambda^alpha) (lambda^alpha)^n),   n = 0..L-1.

Training applies `k` with the shared FFT convolution; `step` runs the
recursion one time step at a time.

The paper's Table 3 ablations are switches of the layer: the real field
(`complex=False`), and removing alpha (`use_alpha=False`: alpha = 1, so the
factor is lambda itself), beta (`use_beta=False`: beta = 1) or omega
(`use_omega=False`: no shortcut, o_t = Re(y_t)).
"""

import math

import keras
from keras import ops

from keras_ssm.layers.base import ConvolutionalSSM
from keras_ssm.ops import complex as cplx
from keras_ssm.utils.validation import check_bool
from keras_ssm.utils.validation import check_choice
from keras_ssm.utils.validation import check_dropout
from keras_ssm.utils.validation import check_dt_range
from keras_ssm.utils.validation import check_float
from keras_ssm.utils.validation import check_open_unit

INITS = ("ring", "stable")

# Weight names. lambda and alpha shape the dynamics: no weight decay.
LAMBDA = "ces_lambda"
ALPHA = "ces_alpha"
BETA = "ces_beta"
OMEGA = "ces_omega"


def ring_initializer(r_min, r_max, max_phase, parts):
    """Initializer of lambda' = log(log(lambda)) on a ring of the unit disk.

    |lambda| is drawn uniformly over the area of the annulus r_min <= |z| <=
    r_max and arg(lambda) uniformly in [0, max_phase]. With `parts == 1`
    (real variant) lambda is the radius and the weight holds
    log(-log(lambda)), the real part of log(log(lambda)).
    """

    def initializer(shape, dtype=None):
        u_radius = keras.initializers.RandomUniform(0.0, 1.0)(shape[:-1])
        radius_sq = u_radius * (r_max**2 - r_min**2) + r_min**2
        log_radius = 0.5 * ops.log(radius_sq)  # log|lambda| < 0
        if parts == 1:
            value = ops.expand_dims(ops.log(-log_radius), -1)
        else:
            u_phase = keras.initializers.RandomUniform(0.0, 1.0)(shape[:-1])
            log_lambda = (log_radius, max_phase * u_phase)
            value = ops.stack(cplx.clog(log_lambda), axis=-1)
        return ops.cast(value, dtype)

    return initializer


def stable_initializer(value, parts):
    """Initializer of lambda' with every lambda at the fixed point `value`.

    The "stable" ablation of the paper: lambda = value (real, in (0, 1)) for
    all channels, so log(lambda) < 0 and lambda' = log(-log(lambda)) + i pi.
    """
    real_part = math.log(-math.log(value))

    def initializer(shape, dtype=None):
        fill = ops.array([real_part, math.pi][:parts], "float32")
        return ops.cast(ops.zeros(shape, "float32") + fill, dtype)

    return initializer


def log_uniform_pair_initializer(dt_min, dt_max):
    """log(dt), dt log-uniform in [dt_min, dt_max], in every trailing part."""

    def initializer(shape, dtype=None):
        log_dt = keras.initializers.RandomUniform(
            math.log(dt_min), math.log(dt_max)
        )(shape[:-1])
        # concatenate copies; repeat may return a view that torch cannot
        # assign into when the weight is updated.
        value = ops.concatenate([ops.expand_dims(log_dt, -1)] * shape[-1], -1)
        return ops.cast(value, dtype)

    return initializer


@keras.saving.register_keras_serializable(package="keras_ssm")
class CES(ConvolutionalSSM):
    """Complex exponential smoothing (CES) with FFT convolution and step mode.

    Maps `(batch, length, channels)` to the same shape. Each channel smooths
    its input with y_t = (1 - lambda^alpha) beta x_t + lambda^alpha y_{t-1}
    and outputs o_t = sigmoid(omega) x_t + Re(y_t). In `call` this is the
    float32 FFT convolution with the kernel
    k[n] = Re(beta (1 - lambda^alpha) (lambda^alpha)^n); `step` runs the
    recursion, whose state is the complex smoothing state y.

    Parameterisation (as in the reference implementation):

    - lambda' = log(log(lambda)) is the trained weight (Proposition 1 of the
      paper: stable gradients when |lambda| is close to 1), so
      log(lambda) = exp(lambda').
    - alpha = exp(a_re) + i exp(a_im), both parts initialised to log(dt),
      dt log-uniform in [dt_min, dt_max].
    - beta = exp(b), b complex with parts ~ N(0, 0.2) (so beta starts near
      1; the paper writes beta ~ N(0, 0.2) for this weight).
    - The constraint clamps |lambda^alpha| = exp(Re(alpha log lambda)) to at
      most `max_lambda` by rescaling the modulus (the phase is kept). It is
      applied in the forward computation, so it holds whatever the weights.
    - omega ~ N(0, 1) is real. The shortcut is sigmoid(omega) x, the paper's
      formula; the reference code multiplies by omega itself.

    With `complex=False` (the paper's real-valued ablation) the imaginary
    parts are dropped: lambda in (0, 1) with weight log(-log(lambda)),
    alpha = exp(a) and beta = exp(b) real.

    The other ablations of the paper's Table 3 remove one learnable factor
    of eqs. (7) and (13), and its weight:

    - `use_alpha=False`: alpha = 1, y_t = (1 - lambda) beta x_t +
      lambda y_{t-1} (the constraint then bounds |lambda|); `dt_min` and
      `dt_max` are unused.
    - `use_beta=False`: beta = 1, y_t = (1 - lambda^alpha) x_t +
      lambda^alpha y_{t-1}.
    - `use_omega=False`: no shortcut, o_t = Re(y_t). The paper introduces
      omega as the gate of the input-to-output shortcut of eq. (13);
      removing it removes that path (as does the authors' code).

    lambda' and alpha are float32 SSM weights without weight decay; beta and
    omega are float32 weights (never autocast) with the usual weight decay,
    as in the reference, which decays all weights.

    Args:
        r_min: inner radius of the initial ring of lambda, in (0, r_max].
        r_max: outer radius of the initial ring, in [r_min, 1).
        max_phase: initial arg(lambda) is uniform in [0, max_phase].
        init: "ring" (default) or "stable" (every lambda = `stable_lambda`,
            the fixed-point initialisation of the paper's ablation).
        stable_lambda: the initial lambda of `init="stable"`, in (0, 1).
        dt_min: lower bound of the log-uniform initial alpha.
        dt_max: upper bound of the log-uniform initial alpha.
        max_lambda: bound on |lambda^alpha|, in (0, 1).
        complex: complex (default) or real-valued smoothing.
        dt_scale: factor on the step alpha at call time, after the
            `max_lambda` clamp (alpha plays the part of an SSM's dt in
            lambda^alpha): sampling twice as finely goes with
            `dt_scale=0.5`, as for `S4D`.
        use_alpha: learn the damping exponent alpha (default True; False
            fixes alpha = 1, the paper's "No alpha" ablation).
        use_beta: learn the input factor beta (default True; False fixes
            beta = 1, the "No beta" ablation).
        use_omega: add the gated shortcut sigmoid(omega) x (default True;
            False drops it, the "No omega" ablation).
        bidirectional: add a second smoothing run backward in time, combined
            with the forward one as a two-sided kernel whose backward taps
            start at lag -1 (the paper's equation (14)); no `step`.
        dropout: dropout rate on the output.

    Per-task rings of the ETSMLP authors' LRA models are those of the
    `etsmlp_<task>_paper` presets (`keras_ssm.presets.lra_rings()`):
    ListOps and Text: (0.1, 0.9, 3.14); Retrieval: (0.9, 0.99, 0.314);
    Image: (0.6, 0.9, 3.14); Pathfinder: (0.9, 0.9999, 0.314); Path-X:
    (0.99, 0.9999, 0.314).

    Example:

    >>> layer = keras_ssm.layers.CES(r_min=0.9, r_max=0.999, max_phase=0.314)
    >>> y = layer(keras.random.normal((2, 1024, 16)))  # (2, 1024, 16)
    """

    config_arguments = (
        "r_min",
        "r_max",
        "max_phase",
        "init",
        "stable_lambda",
        "dt_min",
        "dt_max",
        "max_lambda",
        "complex",
        "dt_scale",
        "bidirectional",
        "dropout",
        "use_alpha",
        "use_beta",
        "use_omega",
    )

    def __init__(
        self,
        r_min=0.1,
        r_max=0.9,
        max_phase=3.14,
        init="ring",
        stable_lambda=0.5,
        dt_min=0.001,
        dt_max=0.1,
        max_lambda=0.9999,
        complex=True,
        bidirectional=False,
        dropout=0.0,
        dt_scale=1.0,
        use_alpha=True,
        use_beta=True,
        use_omega=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        r_min = check_float("r_min", r_min, minimum=0.0, min_open=True)
        r_max = check_open_unit("r_max", r_max)
        if not r_min <= r_max:
            raise ValueError(
                "`r_min` and `r_max` must satisfy 0 < r_min <= r_max < 1, got "
                f"r_min={r_min}, r_max={r_max}."
            )
        self.r_min = r_min
        self.r_max = r_max
        self.max_phase = check_float("max_phase", max_phase, minimum=0.0)
        self.init = check_choice("init", init, INITS)
        self.stable_lambda = check_open_unit("stable_lambda", stable_lambda)
        dt_min, dt_max = check_dt_range(dt_min, dt_max, strict=False)
        self.dt_min = dt_min
        self.dt_max = dt_max
        self.max_lambda = check_open_unit("max_lambda", max_lambda)
        self.complex = check_bool("complex", complex)
        self.dt_scale = check_float(
            "dt_scale", dt_scale, minimum=0.0, min_open=True
        )
        self.use_alpha = check_bool("use_alpha", use_alpha)
        self.use_beta = check_bool("use_beta", use_beta)
        self.use_omega = check_bool("use_omega", use_omega)
        self.bidirectional = check_bool("bidirectional", bidirectional)
        self.dropout = check_dropout("dropout", dropout)
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy
        )

    def build(self, input_shape):
        channels = self._validate_input_shape(input_shape)
        self.channels = channels
        parts = 2 if self.complex else 1
        shape = (2 if self.bidirectional else 1, channels, parts)
        if self.init == "ring":
            lambda_init = ring_initializer(
                self.r_min, self.r_max, self.max_phase, parts
            )
        else:
            lambda_init = stable_initializer(self.stable_lambda, parts)
        self.lambda_loglog = self.add_ssm_weight(LAMBDA, shape, lambda_init)
        # An ablated factor has no weight (None): its value is fixed.
        self.alpha_log = None
        if self.use_alpha:
            self.alpha_log = self.add_ssm_weight(
                ALPHA,
                shape,
                log_uniform_pair_initializer(self.dt_min, self.dt_max),
            )
        self.beta_log = None
        if self.use_beta:
            self.beta_log = self.add_weight(
                name=BETA,
                shape=shape,
                initializer=keras.initializers.RandomNormal(stddev=0.2),
                dtype="float32",
                autocast=False,
            )
        self.omega = None
        if self.use_omega:
            self.omega = self.add_weight(
                name=OMEGA,
                shape=(channels,),
                initializer=keras.initializers.RandomNormal(stddev=1.0),
                dtype="float32",
                autocast=False,
            )

    # -- the smoothing in closed form ------------------------------------------

    def _parts(self, weight):
        """A (directions, channels, parts) weight as a complex pair."""
        value = ops.convert_to_tensor(weight)
        if self.complex:
            return value[..., 0], value[..., 1]
        return value[..., 0], ops.zeros_like(value[..., 0])

    def log_smoothing_factor(self, dt_scale=None):
        """log(lambda^alpha) = alpha log(lambda), after the constraint.

        Returns a complex pair of shape (directions, channels). Its real part
        is clamped to log(max_lambda), i.e. |lambda^alpha| <= max_lambda;
        then both parts are multiplied by the step factor (`dt_scale`, or
        the layer's). The factor comes after the clamp so that every step
        size samples one and the same continuous-time system.
        """
        scale = self.dt_scale if dt_scale is None else dt_scale
        lam = self._parts(self.lambda_loglog)
        if self.complex:
            log_lambda = cplx.cexp(lam)
        else:
            log_lambda = (-ops.exp(lam[0]), lam[1])
        if self.use_alpha:
            a = self._parts(self.alpha_log)
            if self.complex:
                alpha = (ops.exp(a[0]), ops.exp(a[1]))
            else:
                alpha = (ops.exp(a[0]), a[1])
            q_re, q_im = cplx.cmul(alpha, log_lambda)
        else:  # alpha = 1: lambda^alpha = lambda
            q_re, q_im = log_lambda
        q_re = ops.minimum(q_re, math.log(self.max_lambda))
        return q_re * scale, q_im * scale

    def smoothing_factor(self, dt_scale=None):
        """lambda^alpha after the constraint: a pair (directions, channels)."""
        return cplx.cexp(self.log_smoothing_factor(dt_scale))

    def input_gain(self, dt_scale=None):
        """beta (1 - lambda^alpha), the weight of x_t in y_t (complex pair)."""
        one_minus = cplx.csub((1.0, 0.0), self.smoothing_factor(dt_scale))
        if not self.use_beta:  # beta = 1
            return one_minus
        beta = cplx.cexp(self._parts(self.beta_log))
        return cplx.cmul(beta, one_minus)

    def kernel(self, length, dt_scale=None):
        """The convolution kernel, shape (directions, channels, length).

        k[n] = Re(beta (1 - lambda^alpha) (lambda^alpha)^n) in float32; the
        powers are exp(n log(lambda^alpha)).
        """
        q = self.log_smoothing_factor(dt_scale)
        gain = self.input_gain(dt_scale)
        steps = ops.cast(ops.arange(length), "float32")
        modulus = ops.exp(q[0][..., None] * steps)
        angle = q[1][..., None] * steps
        return modulus * (
            gain[0][..., None] * ops.cos(angle)
            - gain[1][..., None] * ops.sin(angle)
        )

    def shortcut_gain(self):
        """sigmoid(omega), the weight of the skip path (channels,).

        None with `use_omega=False` (no skip path).
        """
        if not self.use_omega:
            return None
        return ops.sigmoid(self.omega)

    # -- recurrent mode --------------------------------------------------------

    def step(self, inputs_t, state, dt_scale=None):
        """One step: y = (1 - lambda^alpha) beta x + lambda^alpha y_prev.

        Args:
            inputs_t: tensor of shape `(batch, channels)`.
            state: the pair returned by `get_initial_state` or `step`.
            dt_scale: optional factor on the step alpha (the layer's
                `dt_scale` by default).

        Returns:
            `(outputs_t, new_state)`, outputs sigmoid(omega) x + Re(y) of
            shape `(batch, channels)`.
        """
        self._check_step_inputs(inputs_t)
        out_dtype = self.compute_dtype
        x = ops.cast(inputs_t, "float32")
        decay = self.smoothing_factor(dt_scale)
        gain = self.input_gain(dt_scale)
        y = cplx.cadd(
            cplx.cmul((decay[0][0], decay[1][0]), state),
            cplx.cscale((gain[0][0], gain[1][0]), x),
        )
        out = y[0]
        if self.use_omega:
            out = out + self.shortcut_gain() * x
        return ops.cast(out, out_dtype), y
