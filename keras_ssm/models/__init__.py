"""The model zoo: backbones, task models and named presets.

- `SSMBackbone`: token ids or values -> (batch, length, hidden_dim), a
  stack of one block type ("s4d", "etsmlp", "etsmlp_gate", "mamba",
  "transformer").
- `SSMClassifier`: sequence classification (the Long Range Arena tasks,
  the two-document retrieval head included).
- `SSMCausalLM`: Mamba / Mamba-2 language models (`generate`, Hugging
  Face checkpoints via `from_preset`) on an `SSMCausalLMBackbone`.
- `SSMForecaster`, `TransformerForecaster`, `InformerForecaster`:
  long-horizon forecasting.
- `list_presets()`, `get_preset(name)`, `training_recipe(name)`: the preset
  registry (architecture, training recipe, data and source of each named
  configuration). A registry name is a recipe: `Model.from_preset(name)`
  builds an UNTRAINED model of it.
- `model.save_to_preset(folder)` writes a trained model as a preset folder
  (keras-hub's layout); `Model.from_preset(folder)` (or `"hf://..."`,
  `"kaggle://..."`) loads it, TRAINED, on any backend, and
  `upload_preset(uri, folder)` publishes it.

Every model names its width `hidden_dim` and the width of value inputs
`input_features` (the README's "Vocabulary" lists the names and their
deprecated aliases).
"""

from keras_ssm.models.backbone import SSMBackbone
from keras_ssm.models.blocks import BLOCK_TYPES
from keras_ssm.models.causal_lm import SSMCausalLM
from keras_ssm.models.causal_lm_backbone import SSMCausalLMBackbone
from keras_ssm.models.causal_lm_preprocessor import SSMCausalLMPreprocessor
from keras_ssm.models.causal_lm_preprocessor import SSMTokenizer
from keras_ssm.models.classifier import SSMClassifier
from keras_ssm.models.forecaster import SSMForecaster
from keras_ssm.models.forecasting_baselines import InformerForecaster
from keras_ssm.models.forecasting_baselines import TransformerForecaster
from keras_ssm.models.forecasting_layers import DecoderSeed
from keras_ssm.models.forecasting_layers import HorizonHead
from keras_ssm.models.forecasting_layers import WindowDenormalization
from keras_ssm.models.forecasting_layers import WindowNormalization
from keras_ssm.models.preset_io import upload_preset
from keras_ssm.models.recipes import make_optimizer
from keras_ssm.models.recipes import training_recipe
from keras_ssm.presets import get_preset
from keras_ssm.presets import list_presets

MODEL_CLASSES = {
    cls.__name__: cls
    for cls in (
        SSMClassifier,
        SSMForecaster,
        TransformerForecaster,
        InformerForecaster,
    )
}


def from_preset(preset, weights=None, load_weights=True, **overrides):
    """The model of any preset, of the class the preset names.

    A registry name gives an untrained model of its recipe; a preset folder
    (local, `"hf://owner/name"` or `"kaggle://..."`) gives the trained
    model saved in it. See `SSMClassifier.from_preset` for the arguments.

    Example:

    ```python
    model = keras_ssm.models.from_preset("s4d_etth1_cpu")
    ```
    """
    import keras

    from keras_ssm.models import preset_io

    return preset_io.from_preset(
        keras.Model,
        preset,
        weights=weights,
        load_weights=load_weights,
        **overrides,
    )
