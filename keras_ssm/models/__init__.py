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
  configuration); `Model.from_preset(name)` builds one.
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


def from_preset(preset, weights=None, **overrides):
    """The model of any preset, of the class the preset names.

    Example:

    ```python
    model = keras_ssm.models.from_preset("s4d_etth1_cpu")
    ```
    """
    class_name = get_preset(preset)["model"]["class"]
    return MODEL_CLASSES[class_name].from_preset(
        preset, weights=weights, **overrides
    )
