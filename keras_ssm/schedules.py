"""Learning-rate schedules of the SSM references, with linear warm-up.

The S4 reference warms up linearly and decays with a cosine; Keras' own
`keras.optimizers.schedules.CosineDecay(0.0, ..., warmup_target=peak,
warmup_steps=w)` is exactly that. The ETSMLP reference (fairseq's
"polynomial_decay" with power 1) warms up linearly and then decays linearly
to zero, which Keras has no schedule for: `LinearDecayWithWarmup`. Both
warm-ups may start from a small positive rate (the ETSMLP paper's 1e-7)
instead of 0.
`warmup_schedule` builds either from a peak rate and step counts, and
`peak_learning_rate` reads the peak back (`SSMAdamW` scales its SSM
learning rate against it).
"""

import keras
from keras import ops

SCHEDULES = ("cosine", "linear", "constant")


@keras.saving.register_keras_serializable(package="keras_ssm")
class LinearDecayWithWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to a peak, then linear decay to an end value.

        lr(s) = init + (peak - init) * s / warmup_steps       s < warmup
        lr(s) = end + (peak - end) * (1 - (s - warmup) / decay_steps)
        lr(s) = end                                   s >= warmup + decay

    Args:
        peak_learning_rate: the rate reached after the warm-up.
        warmup_steps: optimizer steps of the warm-up (0: none).
        decay_steps: optimizer steps of the decay after the warm-up (> 0).
        end_learning_rate: the rate at the end of the decay (default 0).
        initial_learning_rate: the rate at step 0, where the warm-up starts
            (default 0; fairseq's `--warmup-init-lr`), in [0, peak].

    Example:

    >>> schedule = LinearDecayWithWarmup(0.01, warmup_steps=3000,
    ...                                  decay_steps=87000)
    >>> optimizer = keras.optimizers.AdamW(schedule)
    """

    def __init__(
        self,
        peak_learning_rate,
        warmup_steps,
        decay_steps,
        end_learning_rate=0.0,
        initial_learning_rate=0.0,
    ):
        if warmup_steps < 0:
            raise ValueError(
                f"`warmup_steps` must be >= 0, got {warmup_steps}."
            )
        if decay_steps <= 0:
            raise ValueError(f"`decay_steps` must be > 0, got {decay_steps}.")
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = int(decay_steps)
        self.end_learning_rate = float(end_learning_rate)
        if not 0.0 <= initial_learning_rate <= self.peak_learning_rate:
            raise ValueError(
                "`initial_learning_rate` must be in [0, peak_learning_rate="
                f"{self.peak_learning_rate}], got {initial_learning_rate}."
            )
        self.initial_learning_rate = float(initial_learning_rate)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak, end = self.peak_learning_rate, self.end_learning_rate
        start = self.initial_learning_rate
        # max(., 1) keeps warmup_steps = 0 free of a division by zero; the
        # warm-up branch is then never taken.
        warmup = ops.cast(max(self.warmup_steps, 1), "float32")
        rising = start + (peak - start) * step / warmup
        done = ops.clip((step - self.warmup_steps) / self.decay_steps, 0, 1)
        falling = end + (peak - end) * (1.0 - done)
        return ops.where(step < self.warmup_steps, rising, falling)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "initial_learning_rate": self.initial_learning_rate,
        }


def warmup_schedule(
    learning_rate,
    total_steps,
    warmup_steps=0,
    kind="cosine",
    alpha=0.0,
    initial_learning_rate=0.0,
):
    """A schedule that warms up linearly, then decays over the rest.

    Args:
        learning_rate: the peak rate.
        total_steps: optimizer steps of the whole run, warm-up included.
        warmup_steps: steps of the linear warm-up (0: none).
        kind: `"cosine"` (decay to `alpha * learning_rate`; S4's configs
            decay to 0), `"linear"` (decay to 0, as in ETSMLP) or
            `"constant"` (no schedule: returns `learning_rate`).
        alpha: final fraction of the peak for `"cosine"` (default 0).
        initial_learning_rate: the rate the warm-up starts from (default
            0; the ETSMLP paper starts from 1e-7), in [0, learning_rate].

    Returns:
        A `LearningRateSchedule`, or the float for `"constant"`.

    Example:

    >>> schedule = warmup_schedule(0.01, total_steps=40000, warmup_steps=1000)
    """
    if kind not in SCHEDULES:
        raise ValueError(f"`kind` must be one of {SCHEDULES}, got {kind!r}.")
    if kind == "constant":
        return learning_rate
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(
            f"`warmup_steps` must be in [0, total_steps={total_steps}), got "
            f"{warmup_steps}."
        )
    if not 0.0 <= initial_learning_rate <= learning_rate:
        raise ValueError(
            "`initial_learning_rate` must be in [0, learning_rate="
            f"{learning_rate}], got {initial_learning_rate}."
        )
    decay_steps = total_steps - warmup_steps
    if kind == "linear":
        return LinearDecayWithWarmup(
            learning_rate,
            warmup_steps,
            decay_steps,
            initial_learning_rate=initial_learning_rate,
        )
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=decay_steps, alpha=alpha
        )
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate,
        decay_steps=decay_steps,
        alpha=alpha,
        warmup_target=learning_rate,
        warmup_steps=warmup_steps,
    )


def peak_learning_rate(learning_rate):
    """The largest rate a float or schedule reaches (its rate after warm-up).

    Args:
        learning_rate: a float, `LinearDecayWithWarmup`, a Keras
            `CosineDecay` (with or without warm-up) or any schedule, for
            which the rate at step 0 is returned.

    Returns:
        A Python float.

    Example:

    >>> peak_learning_rate(warmup_schedule(0.01, 100, warmup_steps=10))
    0.01
    """
    if not isinstance(
        learning_rate, keras.optimizers.schedules.LearningRateSchedule
    ):
        return float(learning_rate)
    if isinstance(learning_rate, LinearDecayWithWarmup):
        return learning_rate.peak_learning_rate
    target = getattr(learning_rate, "warmup_target", None)
    if target is not None:
        return float(target)
    return float(ops.convert_to_numpy(learning_rate(0)))
