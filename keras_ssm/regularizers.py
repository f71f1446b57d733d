"""The Lipschitz regularizer of "Data Continuity Matters" (Qu et al., 2023).

The penalty measures how far a sequence is from continuous:

    L_Lip(x) = mean over batch b, channels h and the L-1 time differences t
               of (x[b, t+1, h] - x[b, t, h])^2.

Adding `+lambda * L_Lip` of the input embedding to the training loss makes
the embedded sequence smoother, which state space models prefer; adding
`-lambda * L_Lip` makes it more discrete, which Transformers prefer.
"""

import keras
from keras import ops

from keras_ssm.utils.validation import check_bool
from keras_ssm.utils.validation import check_float

_EPSILON = 1e-12


def _validate_sequence(x, name="x"):
    if len(x.shape) != 3:
        raise ValueError(
            f"`{name}` must have shape (batch, length, channels), i.e. rank "
            f"3; got shape {tuple(x.shape)}."
        )
    length = x.shape[1]
    # Only a static length is checked: an unknown or symbolic one (a JAX
    # export's dimension expression) cannot be compared in Python.
    if isinstance(length, int) and length < 2:
        raise ValueError(
            f"`{name}` needs at least 2 time steps to have a difference; got "
            f"shape {tuple(x.shape)}."
        )


def _rescale_to_unit_interval(x, mask=None):
    """(x - min) / (max - min) over the whole batch, min/max of valid steps.

    The reference code computes `(x - x.min()) / x.max()`, which lies in
    [0, 1] only when min(x) = 0; this follows the stated intent (rescale to
    [0, 1]) instead. With no valid step at all (an empty or fully masked
    batch) `x` is returned unscaled: there is nothing to rescale, and the
    infinite min/max would turn every value into NaN.
    """
    if mask is not None:
        valid = ops.expand_dims(mask, -1)
        x_low = ops.where(valid, x, float("inf"))
        x_high = ops.where(valid, x, float("-inf"))
    else:
        x_low, x_high = x, x
    # `initial` makes the reductions of an empty batch defined.
    low = ops.min(x_low, initial=float("inf"))
    high = ops.max(x_high, initial=float("-inf"))
    any_valid = low <= high
    low = ops.where(any_valid, low, 0.0)
    scale = ops.where(any_valid, ops.maximum(high - low, _EPSILON), 1.0)
    return (x - low) / scale


def lipschitz_penalty(x, mask=None, normalize=False):
    """Mean squared first difference of a batch of sequences, L_Lip(x).

    L_Lip(x) = mean over b, h and t = 0..L-2 of (x[b, t+1, h] - x[b, t, h])^2,
    computed in float32 whatever the dtype of `x`. With a `mask`, only the
    differences between two valid steps count (padding adds no jump).

    Args:
        x: tensor of shape `(batch, length, channels)`, `length >= 2`.
        mask: optional boolean tensor of shape `(batch, length)`.
        normalize: rescale `x` to [0, 1] (min and max over the whole batch)
            before taking differences, as the paper's reference code does.

    Returns:
        A float32 scalar tensor.

    Example:

    >>> x = keras.ops.reshape(keras.ops.arange(6.0), (1, 3, 2))
    >>> float(lipschitz_penalty(x))  # every step moves by 2
    4.0
    """
    x = ops.convert_to_tensor(x)
    _validate_sequence(x)
    x = ops.cast(x, "float32")
    if mask is not None:
        mask = ops.cast(ops.convert_to_tensor(mask), "bool")
    if normalize:
        x = _rescale_to_unit_interval(x, mask)
    squared = ops.mean(ops.square(x[:, 1:] - x[:, :-1]), axis=-1)
    if mask is None:
        pair_valid = ops.ones_like(squared)
    else:
        pair_valid = ops.cast(
            ops.logical_and(mask[:, 1:], mask[:, :-1]), "float32"
        )
        # where, not a product: a masked step may hold inf or NaN.
        squared = ops.where(pair_valid > 0, squared, 0.0)
    # A sum over the count (at least 1), not ops.mean: an empty or fully
    # masked batch has no difference and adds zero penalty, not NaN.
    total = ops.sum(squared * pair_valid)
    return total / ops.maximum(ops.sum(pair_valid), 1.0)


@keras.saving.register_keras_serializable(package="keras_ssm")
class LipschitzRegularizer(keras.regularizers.Regularizer):
    """Activity regularizer that adds `weight * L_Lip(outputs)` to the loss.

    Use it as the `activity_regularizer` of the embedding layer. Keras (since
    3.14) divides an activity regularizer's value by the batch size; this
    regularizer returns `weight * L_Lip * batch_size` so that exactly
    `weight * L_Lip` (a batch mean) reaches the training loss. Calling it
    directly on a tensor therefore gives `batch_size` times the penalty; use
    `lipschitz_penalty` for the bare value.

    A positive weight smooths the embedded sequence (state space models); a
    negative weight makes it more discrete (Transformers). To change the
    weight during training use `keras_ssm.layers.LipschitzRegularization`
    with `keras_ssm.callbacks.LipschitzSchedule`.

    Args:
        weight: the factor lambda (float, any sign).
        normalize: rescale the outputs to [0, 1] before the penalty.

    Example:

    >>> embed = keras.layers.Embedding(
    ...     256, 64, activity_regularizer=LipschitzRegularizer(0.1)
    ... )
    """

    def __init__(self, weight=0.01, normalize=False):
        self.weight = check_float("weight", weight)
        self.normalize = check_bool("normalize", normalize)

    def __call__(self, x):
        x = ops.convert_to_tensor(x)
        penalty = lipschitz_penalty(x, normalize=self.normalize)
        batch_size = ops.cast(ops.shape(x)[0], "float32")
        # Keras divides activity regularizers by the batch size: undo it.
        return self.weight * penalty * batch_size

    def get_config(self):
        return {"weight": self.weight, "normalize": self.normalize}
