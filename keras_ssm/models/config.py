"""The config of a model whose constructor arguments are its attributes."""

import keras

from keras_ssm.models.preset_io import init_arguments


def _plain(value):
    """A config value: layers serialized, tuples as lists, dicts copied."""
    if isinstance(value, keras.layers.Layer):
        return keras.layers.serialize(value)
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


_HEADER = {
    "trainable": lambda model: model.trainable,
    "dtype": lambda model: keras.dtype_policies.serialize(model.dtype_policy),
}


class ArgumentConfig:
    """`get_config` and `from_config` written once for the models.

    A model that keeps each constructor argument as the attribute of the
    same name gets a config of its `name`, the `_config_header` entries
    (`"trainable"` and/or `"dtype"`) and every argument of `__init__`, a
    backbone serialized; `from_config` deserializes the backbone and the
    dtype policy and calls the constructor, which maps the deprecated
    names of configs saved by earlier versions (see
    `keras_ssm.utils.deprecation`).
    """

    _config_header = ("trainable",)

    def get_config(self):
        config = {"name": self.name}
        for key in self._config_header:
            config[key] = _HEADER[key](self)
        for key in init_arguments(type(self)):
            config[key] = _plain(getattr(self, key))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("backbone"), dict):
            config["backbone"] = keras.layers.deserialize(config["backbone"])
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)
