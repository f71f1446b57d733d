"""`SSMClassifier`: a backbone, masked pooling and a classification head."""

import keras
from keras import ops

from keras_ssm.models.task import PresetModel
from keras_ssm.utils.deprecation import deprecated_arguments
from keras_ssm.utils.validation import check_classifier_data

POOLINGS = ("mean", "max")


@keras.saving.register_keras_serializable(package="keras_ssm")
class MaskedMaxPooling(keras.layers.Layer):
    """Maximum over the valid steps: (batch, length, c) -> (batch, c)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is not None:
            valid = ops.expand_dims(ops.cast(mask, "bool"), -1)
            lowest = ops.convert_to_tensor(-3.0e38, dtype=inputs.dtype)
            if inputs.dtype in ("float16", "bfloat16"):
                lowest = ops.convert_to_tensor(-6.0e4, dtype=inputs.dtype)
            inputs = ops.where(valid, inputs, lowest)
        return ops.max(inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package="keras_ssm")
class SSMClassifier(PresetModel):
    """Sequence classification: backbone, pooling over valid steps, logits.

    With `retrieval=True` (the two-document matching task of the Long Range
    Arena), both documents go through the same backbone; the pooled
    features u, v are combined as [u, v, u * v, u - v] and classified by a
    two-layer MLP (GELU hidden layer of width `head_intermediate_dim`).

    Args:
        backbone: a `keras_ssm.models.SSMBackbone`.
        num_classes: number of classes.
        pooling: "mean" or "max" over the valid (non-padding) steps.
        retrieval: two token inputs, the matching head above.
        head_intermediate_dim: width of the retrieval MLP's hidden layer
            (default the backbone's `hidden_dim`). Its deprecated name is
            `hidden_dim` (before keras-ssm 0.2.0), which is now the model
            width only; see the README's "Vocabulary".
        **kwargs: `name`, `trainable`, `dtype` of `keras.Model`.

    Outputs are float32 logits (batch, num_classes).

    Example:

    >>> from keras_ssm.models import SSMBackbone
    >>> backbone = SSMBackbone("s4d", num_layers=1, hidden_dim=8,
    ...                        vocabulary_size=17, d_state=4)
    >>> SSMClassifier(backbone, num_classes=10).output_shape
    (None, 10)
    """

    @deprecated_arguments(hidden_dim="head_intermediate_dim")
    def __init__(
        self,
        backbone,
        num_classes,
        pooling="mean",
        retrieval=False,
        head_intermediate_dim=None,
        **kwargs,
    ):
        if isinstance(num_classes, bool) or not isinstance(num_classes, int):
            raise TypeError(
                f"`num_classes` must be an integer >= 2, got {num_classes!r}."
            )
        if num_classes < 2:
            raise ValueError(
                f"`num_classes` must be an integer >= 2, got {num_classes}."
            )
        if pooling not in POOLINGS:
            raise ValueError(
                f"`pooling` must be one of {POOLINGS}; got {pooling!r}."
            )
        if retrieval and not backbone.takes_token_ids:
            raise ValueError("`retrieval=True` needs a backbone on token ids.")
        head_intermediate_dim = head_intermediate_dim or backbone.hidden_dim

        def pooled(inputs):
            features = backbone(inputs)
            mask = backbone.padding_mask(inputs)
            if pooling == "mean":
                return keras.layers.GlobalAveragePooling1D()(
                    features, mask=mask
                )
            return MaskedMaxPooling()(features, mask=mask)

        shape = tuple(backbone.inputs[0].shape[1:])
        dtype = backbone.inputs[0].dtype
        head = keras.layers.Dense(num_classes, dtype="float32", name="logits")
        if not retrieval:
            inputs = keras.Input(shape, dtype=dtype, name="inputs")
            outputs = head(pooled(inputs))
        else:
            inputs = [
                keras.Input(shape, dtype=dtype, name="token_ids_1"),
                keras.Input(shape, dtype=dtype, name="token_ids_2"),
            ]
            u, v = pooled(inputs[0]), pooled(inputs[1])
            features = keras.layers.Concatenate(name="matching_features")(
                [u, v, u * v, u - v]
            )
            hidden = keras.layers.Dense(
                head_intermediate_dim, activation="gelu", name="mlp"
            )(features)
            outputs = head(hidden)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.backbone = backbone
        self.num_classes = num_classes
        self.pooling = pooling
        self.retrieval = bool(retrieval)
        self.head_intermediate_dim = head_intermediate_dim

    def fit(self, x=None, y=None, *args, **kwargs):
        # Checked here, on every backend: JAX gathers an out-of-range label
        # without an error and trains on a finite, wrong loss.
        validation_data = kwargs.get(
            "validation_data", args[5] if len(args) > 5 else None
        )
        check_classifier_data(self.num_classes, x, y, validation_data)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        check_classifier_data(self.num_classes, x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def _default_compile(self):
        return {
            "loss": keras.losses.SparseCategoricalCrossentropy(
                from_logits=True
            ),
            "metrics": ["accuracy"],
        }
