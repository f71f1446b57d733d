"""Weights and preset folders move between backends.

One process under another backend serves every model here: it loads the
weights this process saved and reports the outputs and weights it gets,
then saves preset folders that this process loads. Importing a second
backend takes seconds, so it happens once per suite run, not once per model.
"""

import json
import os
import textwrap

import keras
import numpy as np
import pytest

from keras_ssm.models import SSMClassifier
from keras_ssm.models import SSMForecaster
from tests.helpers import other_backend
from tests.helpers import rotated
from tests.helpers import run_python
from tests.helpers import to_numpy


def _values(length, channels, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(2, length, channels)).astype("float32")


def _tokens(length=16):
    tokens = np.random.default_rng(0).integers(1, 15, size=(4, length))
    tokens[:, length // 2 + 1 :] = 0  # padding at the end
    tokens[0, 3:] = 0
    return tokens.astype("int32")


def _sequential(seed, input_shape, layers):
    """A `build_model()` source stacking keras_ssm `layers` (a string), and
    inputs for it."""
    source = f"""
        import keras
        from keras_ssm import layers
        def build_model():
            keras.utils.set_random_seed({seed})
            return keras.Sequential([keras.Input({input_shape}), {layers}])
        """
    return source, _values(*input_shape)


# name: (source defining `build_model()`, run in both processes, and
# optionally `prepare(model)`, run here only before saving; the inputs).
MODELS = {
    "ces": _sequential(
        1,
        (16, 3),
        "layers.CES(bidirectional=True), layers.CES(complex=False), "
        "layers.ETSMLPGate(8, bidirectional=True)",
    ),
    "s4d": _sequential(
        1,
        (12, 3),
        'layers.S4DBlock(d_state=8, init="inv"), '
        "layers.S4D(d_state=4, bidirectional=True)",
    ),
    "selective_ssm": _sequential(3, (9, 6), "layers.SelectiveSSM(d_state=4)"),
    "mamba": _sequential(5, (10, 8), "layers.MambaBlock(d_state=4)"),
    "mamba2": _sequential(
        5,
        (10, 8),
        "layers.Mamba2Block(d_state=4, headdim=4, ngroups=2, chunk_size=4)",
    ),
    "lipschitz": (
        """
        import keras
        from keras_ssm.layers import LipschitzRegularization
        def build_model():
            return keras.Sequential(
                [keras.Input((5, 2)), LipschitzRegularization(0.1)]
            )
        def prepare(model):  # a weight the other process cannot guess
            model.layers[0].assign_weight(-0.8)
        """,
        _values(5, 2),
    ),
    "classifier": (
        """
        import keras_ssm.models as m
        def build_model():
            backbone = m.SSMBackbone(
                "s4d", num_layers=1, hidden_dim=8, vocabulary_size=17,
                d_state=4)
            return m.SSMClassifier(backbone, num_classes=3)
        """,
        _tokens(),
    ),
}

# Run by the other process: load each model's weights, report the largest
# differences of its outputs and weights from this process's.
LOAD_SOURCE = """
import json
import textwrap
import numpy as np
import keras
with open(os.path.join(FOLDER, "sources.json")) as f:
    sources = json.load(f)
report = {}
for name, source in sources.items():
    namespace = {}
    exec(textwrap.dedent(source), namespace)
    data = np.load(os.path.join(FOLDER, name + ".npz"))
    model = namespace["build_model"]()
    model(data["inputs"])
    model.load_weights(os.path.join(FOLDER, name + ".weights.h5"))
    outputs = keras.ops.convert_to_numpy(model(data["inputs"]))
    weights = model.get_weights()
    report[name] = {
        "outputs": float(np.max(np.abs(outputs - data["outputs"]))),
        "num_weights": len(weights),
        "weights": max(
            [float(np.max(np.abs(w - data[f"weight_{i}"]), initial=0))
             for i, w in enumerate(weights)],
            default=0.0,
        ),
    }
"""

# Then save preset folders (a classifier, a forecaster with its scaler)
# and their predictions, for this process to load.
SAVE_SOURCE = """
from keras_ssm.datasets.ett.splits import Standardizer
from keras_ssm.models import SSMClassifier, SSMForecaster
small = {"num_layers": 1, "hidden_dim": 8}
tokens = np.random.default_rng(0).integers(1, 17, (2, 64)).astype("int32")
series = np.random.default_rng(1).normal(size=(2, 96, 1))
classifier = SSMClassifier.from_preset("s4d_listops_cpu", **small)
classifier.save_to_preset(FOLDER + "/classifier")
forecaster = SSMForecaster.from_preset("s4d_etth1_cpu", **small)
forecaster.save_to_preset(
    FOLDER + "/forecaster", scaler=Standardizer([1.0], [2.0])
)
forecaster = SSMForecaster.from_preset(FOLDER + "/forecaster")
np.savez(
    FOLDER + "/expected.npz",
    classifier=np.asarray(classifier.predict(tokens, verbose=0)),
    forecaster=forecaster.forecast(series),
)
print(json.dumps(report))
"""


def _save_models(folder):
    """Saves each model's weights, inputs, outputs and weight values."""
    sources = {}
    for name, (source, inputs) in MODELS.items():
        namespace = {}
        exec(textwrap.dedent(source), namespace)
        model = namespace["build_model"]()
        model(inputs)
        if "prepare" in namespace:
            namespace["prepare"](model)
        model.save_weights(os.path.join(folder, name + ".weights.h5"))
        arrays = {"inputs": inputs, "outputs": to_numpy(model(inputs))}
        for i, weight in enumerate(model.get_weights()):
            arrays[f"weight_{i}"] = weight
        np.savez(os.path.join(folder, name + ".npz"), **arrays)
        sources[name] = source
    with open(os.path.join(folder, "sources.json"), "w") as f:
        json.dump(sources, f)


@pytest.mark.slow  # a subprocess imports another backend
@rotated(1, "a subprocess imports the next backend")
def test_weights_and_preset_folders_move_between_backends(tmp_path):
    folder = str(tmp_path)
    _save_models(folder)
    # torch before tensorflow (segfault otherwise)
    script = f"import os\nimport torch\nFOLDER = {folder!r}\n"
    script += textwrap.dedent(LOAD_SOURCE) + textwrap.dedent(SAVE_SOURCE)
    env = dict(os.environ, KERAS_BACKEND=other_backend())
    result = run_python(["-c", script], env)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(report) == sorted(MODELS)
    for name, errors in report.items():
        assert errors["outputs"] < 1e-5, (name, errors)
        assert errors["weights"] == 0, (name, errors)
        assert errors["num_weights"] > 0, (name, errors)

    # The preset folders saved there load here with the same predictions.
    metadata = json.load(open(f"{folder}/classifier/metadata.json"))
    assert metadata["backend"] == other_backend() != keras.backend.backend()
    expected = np.load(f"{folder}/expected.npz")
    classifier = SSMClassifier.from_preset(f"{folder}/classifier")
    forecaster = SSMForecaster.from_preset(f"{folder}/forecaster")
    tokens = np.random.default_rng(0).integers(1, 17, (2, 64)).astype("int32")
    series = np.random.default_rng(1).normal(size=(2, 96, 1))
    np.testing.assert_allclose(
        to_numpy(classifier(tokens)), expected["classifier"], atol=1e-5
    )
    np.testing.assert_allclose(
        forecaster.forecast(series),
        expected["forecaster"],
        # float32 FFT convolutions of 96 steps differ across backends by
        # ~1e-5 of the outputs, here on the raw scale (std 2, values ~10).
        rtol=1e-5,
        atol=1e-4,
    )
