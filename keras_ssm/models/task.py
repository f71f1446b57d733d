"""The base of the task models: presets, weights and compiled recipes."""

import keras

from keras_ssm import presets as registry
from keras_ssm.models.recipes import resolve_training
from keras_ssm.models.recipes import scale_backbone_config
from keras_ssm.models.recipes import training_recipe


class PresetModel(keras.Model):
    """Mixin of the task models: `from_preset` and `compile_from_preset`.

    Subclasses build a Functional graph in `__init__` and define
    `_default_compile(self)` (loss and metrics of the task).
    """

    @classmethod
    def _from_preset_config(cls, config, **backbone_overrides):
        from keras_ssm.models.backbone import SSMBackbone

        config = dict(config)
        if "backbone" in config:
            config["backbone"] = SSMBackbone(
                **scale_backbone_config(
                    config["backbone"], **backbone_overrides
                )
            )
        else:
            config.update(
                {k: v for k, v in backbone_overrides.items() if v is not None}
            )
        return cls(**config)

    @classmethod
    def from_preset(cls, preset, weights=None, **overrides):
        """The model of a preset, uncompiled.

        There are no published weights: `weights` loads a `.weights.h5`
        file saved with `model.save_weights` from the same preset.

        Args:
            preset: a preset name (see `keras_ssm.models.list_presets()`).
            weights: optional path of a `.weights.h5` file to load.
            **overrides: arguments replacing the preset's, for a smaller
                or longer variant: backbone arguments (`num_layers`,
                `hidden_dim`, `sequence_length`, ...; the intermediate
                width keeps its ratio to `hidden_dim`) for the SSM models,
                model arguments for the forecasting baselines.

        Returns:
            The model.

        Example:

        ```python
        model = SSMClassifier.from_preset("s4d_listops_cpu")
        model.compile_from_preset("s4d_listops_cpu", steps_per_epoch=125)
        ```
        """
        entry = registry.get_preset(preset)
        class_name = entry["model"]["class"]
        if class_name != cls.__name__:
            raise ValueError(
                f"Preset {preset!r} is a {class_name} preset; load it with "
                f"keras_ssm.models.{class_name}.from_preset."
            )
        model = cls._from_preset_config(entry["model"]["config"], **overrides)
        if weights is not None:
            model.load_weights(weights)
        return model

    def fit(self, *args, callbacks=None, **kwargs):
        """`keras.Model.fit`, stopped at a non-finite loss.

        A `keras_ssm.callbacks.TerminateOnNonFiniteLoss` joins `callbacks`
        (unless one, or a `keras.callbacks.TerminateOnNaN`, is there): a NaN
        or infinite loss stops training and restores the weights of the
        start of that epoch, with a warning.
        """
        from keras_ssm.callbacks import default_callbacks

        return super().fit(
            *args, callbacks=default_callbacks(callbacks), **kwargs
        )

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
