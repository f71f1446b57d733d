"""Optimizers that treat SSM parameters as the S4 reference does."""

import keras

from keras_ssm.layers.base import is_ssm_parameter
from keras_ssm.schedules import peak_learning_rate


@keras.saving.register_keras_serializable(package="keras_ssm")
class SSMAdamW(keras.optimizers.AdamW):
    """AdamW with no weight decay and an optional own lr on SSM parameters.

    SSM parameters are the weights that layers create with
    `SequenceLayer.add_ssm_weight` (dt, A, ...); the S4 reference trains them
    with weight decay 0 and, often, a smaller learning rate. They are found
    by a mark on the variable (`keras_ssm.layers.base.is_ssm_parameter`),
    read when the optimizer is built on its variables: the optimizer may be
    created before the model is built, and a user's weight that merely
    shares a name with an SSM weight is decayed as usual.

    Args:
        learning_rate: learning rate of all other weights.
        weight_decay: decoupled weight decay of all other weights.
        ssm_learning_rate: learning rate of SSM parameters (float; defaults
            to `learning_rate`). Follows the same schedule as a fraction
            `ssm_learning_rate / peak` of it, where `peak` is the schedule's
            rate after any warm-up (`keras_ssm.schedules.peak_learning_rate`).
        decay_ssm_parameters: apply `weight_decay` to the SSM parameters
            as well (default False; the ETSMLP reference decays every
            weight).
        **kwargs: passed to `keras.optimizers.AdamW`.

    Example:

    >>> optimizer = SSMAdamW(4e-3, weight_decay=0.05, ssm_learning_rate=1e-3)
    >>> model = keras.Sequential([keras_ssm.layers.S4DBlock(d_state=4)])
    >>> model.compile(optimizer=optimizer, loss="mse")
    """

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay=0.004,
        ssm_learning_rate=None,
        decay_ssm_parameters=False,
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate, weight_decay=weight_decay, **kwargs
        )
        self.ssm_learning_rate = ssm_learning_rate
        if ssm_learning_rate is not None:
            # Against the peak, not step 0: a warm-up starts at rate 0.
            peak = peak_learning_rate(learning_rate)
            if peak <= 0:
                raise ValueError(
                    "`learning_rate` must reach a rate > 0 when "
                    f"`ssm_learning_rate` is set, got peak {peak}."
                )
            self._ssm_lr_multiplier = ssm_learning_rate / peak
        self.decay_ssm_parameters = bool(decay_ssm_parameters)
        self._ssm_variable_keys = set()

    def build(self, variables):
        # The marks live on the `keras.Variable`s; the backends may hand
        # `update_step` and the weight decay their native variables
        # (TensorFlow: the `tf.Variable`), so keep the backend's keys too.
        self._ssm_variable_keys = {
            self._var_key(v) for v in variables if is_ssm_parameter(v)
        }
        super().build(variables)

    def _is_ssm_variable(self, variable):
        return (
            is_ssm_parameter(variable)
            or self._var_key(variable) in self._ssm_variable_keys
        )

    def _use_weight_decay(self, variable):
        if not self.decay_ssm_parameters and self._is_ssm_variable(variable):
            return False
        return super()._use_weight_decay(variable)

    def update_step(self, gradient, variable, learning_rate):
        if self.ssm_learning_rate is not None and self._is_ssm_variable(
            variable
        ):
            learning_rate = learning_rate * self._ssm_lr_multiplier
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["ssm_learning_rate"] = self.ssm_learning_rate
        config["decay_ssm_parameters"] = self.decay_ssm_parameters
        return config


def ssm_adamw(learning_rate=0.001, weight_decay=0.004, ssm_learning_rate=None):
    """Builds `SSMAdamW`: AdamW with SSM parameters excluded from decay.

    Args:
        learning_rate: learning rate (float or schedule).
        weight_decay: weight decay of the non-SSM weights.
        ssm_learning_rate: optional smaller learning rate of SSM parameters.

    Example:

    >>> model = keras.Sequential([keras_ssm.layers.S4DBlock(d_state=4)])
    >>> model.compile(optimizer=ssm_adamw(1e-3, 0.05, 1e-3), loss="mse")
    """
    return SSMAdamW(
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        ssm_learning_rate=ssm_learning_rate,
    )
