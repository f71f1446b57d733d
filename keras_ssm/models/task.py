"""The base of the task models: presets, weights and compiled recipes."""

import keras

from keras_ssm.models.config import ArgumentConfig
from keras_ssm.models.preset_io import PresetMixin
from keras_ssm.models.recipes import resolve_training
from keras_ssm.models.recipes import training_recipe


def check_not_empty(data, argument):
    """Refuses arrays with a batch dimension of 0, naming the argument.

    An empty batch otherwise fails deep inside each backend with a
    different internal error (Keras's predict loop on every backend, the
    layers' kernels on JAX). Datasets and generators are not inspected.

    Args:
        data: an array, or a nest (dict, list, tuple) of arrays.
        argument: the argument's name, for the message.
    """
    for leaf in keras.tree.flatten(data):
        shape = getattr(leaf, "shape", None)
        if shape is None or len(shape) == 0 or shape[0] is None:
            continue
        if shape[0] == 0:
            raise ValueError(
                f"`{argument}` holds no examples: its batch dimension is 0 "
                f"(shape {tuple(shape)}). Pass at least one example."
            )


class PresetModel(ArgumentConfig, PresetMixin, keras.Model):
    """Base of the task models: presets, weights and compiled recipes.

    `from_preset` (a registry recipe, untrained, or a trained preset
    folder) and `save_to_preset` come from
    `keras_ssm.models.preset_io.PresetMixin`. Subclasses build a Functional
    graph in `__init__`, keep each constructor argument as the attribute of
    the same name (their config, see `keras_ssm.models.config`) and define
    `_default_compile(self)` (loss and metrics of the task).
    """

    def fit(self, *args, callbacks=None, **kwargs):
        """`keras.Model.fit`, stopped at a non-finite loss.

        A `keras_ssm.callbacks.TerminateOnNonFiniteLoss` joins `callbacks`
        (unless one, or a `keras.callbacks.TerminateOnNaN`, is there): a NaN
        or infinite loss stops training and restores the weights of the
        start of that epoch, with a warning.
        """
        from keras_ssm.callbacks import default_callbacks

        check_not_empty(kwargs.get("x", args[0] if args else None), "x")
        return super().fit(
            *args, callbacks=default_callbacks(callbacks), **kwargs
        )

    def evaluate(self, x=None, *args, **kwargs):
        check_not_empty(x, "x")
        return super().evaluate(x, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        check_not_empty(x, "x")
        return super().predict(x, *args, **kwargs)

    def predict_on_batch(self, x):
        check_not_empty(x, "x")
        return super().predict_on_batch(x)

    def call(self, inputs, training=None, mask=None, **kwargs):
        check_not_empty(inputs, "inputs")
        return super().call(inputs, training=training, mask=mask, **kwargs)

    def compile_from_preset(
        self, preset, steps_per_epoch=None, epochs=None, **compile_kwargs
    ):
        """Compiles with a preset's optimizer and schedule and the task loss.

        Args:
            preset: a preset name, or a dict of training settings (see
                `keras_ssm.models.training_recipe`).
            steps_per_epoch: batches per epoch (the schedule's length;
                without it the learning rate is constant).
            epochs: number of epochs the schedule spans (default: the
                preset's).
            **compile_kwargs: other `compile` arguments (`jit_compile`,
                ...); `loss` and `metrics` replace the task's.

        Returns:
            The recipe dict of `training_recipe` (optimizer, batch size,
            epochs), for `fit`.
        """
        recipe = training_recipe(
            resolve_training(preset), steps_per_epoch, epochs
        )
        arguments = {**self._default_compile(), **compile_kwargs}
        self.compile(optimizer=recipe["optimizer"], **arguments)
        return recipe
