"""keras_ssm.datasets: load_data shapes, dtypes, seeding and caching."""

import os
import warnings

import numpy as np
import pytest

from keras_ssm import datasets
from tests.conftest import shared_data_dir


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_SSM_CACHE", str(tmp_path / "cache"))


def _offline(monkeypatch):
    """Any download attempt fails the test."""
    import urllib.request

    def refuse(*args, **kwargs):
        raise AssertionError("load_data tried the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.mark.backend_independent
def test_listops_is_generated_offline_seeded_and_cached(tmp_path, monkeypatch):
    _offline(monkeypatch)
    sizes = {"num_train": 12, "num_validation": 4, "num_test": 4}
    first = datasets.listops.load_data(max_length=32, seed=1, **sizes)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = first
    assert x_train.shape == (12, 32) and x_val.shape == (4, 32)
    assert x_train.dtype == np.int32 and y_train.min() >= 0
    assert y_train.max() <= 9 and x_test.shape == (4, 32)
    cached = os.listdir(tmp_path / "cache" / "generated")
    assert len(cached) == 1
    again = datasets.listops.load_data(max_length=32, seed=1, **sizes)
    for (a, b), (c, d) in zip(first, again):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    other = datasets.listops.load_data(max_length=32, seed=2, **sizes)
    assert not np.array_equal(other[0][0], x_train)


@pytest.mark.backend_independent
def test_generated_cache_survives_a_concurrent_writer(tmp_path, monkeypatch):
    # Two writers of the same data interleave: the second writes and renames
    # its file while the first is between its write and its rename. Each
    # must rename its own file, and the cache must hold the data.
    from keras_ssm.datasets import generated

    splits = {
        split: (np.full((2, 3), i, "int32"), np.arange(2))
        for i, split in enumerate(generated.SPLITS)
    }
    real_save = np.savez_compressed
    writers = []

    def save_then_let_another_writer_finish(file, **arrays):
        real_save(file, **arrays)
        writers.append(file)
        if len(writers) == 1:  # the first writer waits for a second
            generated.cached("listops", {"k": 1}, lambda: splits)

    monkeypatch.setattr(
        generated.np, "savez_compressed", save_then_let_another_writer_finish
    )
    result = generated.cached("listops", {"k": 1}, lambda: splits)
    assert len(writers) == 2 and result is splits
    (name,) = os.listdir(tmp_path / "cache" / "generated")  # no leftovers
    monkeypatch.setattr(generated.np, "savez_compressed", real_save)
    again = generated.cached("listops", {"k": 1}, lambda: 1 / 0)
    for split in generated.SPLITS:
        np.testing.assert_array_equal(again[split][0], splits[split][0])


@pytest.mark.backend_independent
def test_pathfinder_is_generated_as_standardised_sequences(monkeypatch):
    _offline(monkeypatch)
    (x, y), (x_val, _), _ = datasets.pathfinder.load_data(
        num_train=6, num_validation=2, num_test=2
    )
    assert x.shape == (6, 1024, 1) and x.dtype == np.float32
    assert x_val.shape == (2, 1024, 1)
    assert abs(float(x.mean())) < 1e-4 and set(np.unique(y)) <= {0, 1}


@pytest.mark.backend_independent
def test_load_preset_data_uses_the_preset_sizes(monkeypatch):
    _offline(monkeypatch)
    train, val, test = datasets.load_preset_data(
        "s4d_listops_cpu", num_train=8, num_validation=2, num_test=2
    )
    assert train[0].shape == (8, 64)


@pytest.fixture
def shared_data(monkeypatch):
    root = shared_data_dir()
    if not os.path.isdir(os.path.join(root, "ETT-small")):
        pytest.skip("the shared ETT data is not available")
    monkeypatch.setenv("KERAS_SSM_DATA", root)
    return root


@pytest.mark.backend_independent
def test_ett_windows_with_informer_splits(shared_data, monkeypatch):
    _offline(monkeypatch)
    train, val, test, scaler = datasets.ett.load_data(
        "ETTh1", features="S", input_size=96, horizon=24
    )
    (x_train, y_train), (x_val, _), (x_test, y_test) = train, val, test
    # Informer's ETTh borders: 8640 training rows, 2880 + 96 per eval set.
    assert x_train.shape == (8640 - 96 - 24 + 1, 96, 1)
    assert y_train.shape == (8521, 24, 1) and x_val.shape[0] == 2880 - 24 + 1
    assert x_test.shape == (2857, 96, 1) and x_train.dtype == np.float32
    # Training-only standardisation: the training rows have mean 0, std 1.
    rows = np.concatenate(
        [x_train[:, 0, 0], x_train[-1, 1:, 0], y_train[-1, :, 0]]
    )
    assert rows.shape == (8640,)
    assert abs(rows.mean()) < 1e-4 and abs(rows.std() - 1) < 1e-4
    # The targets continue the inputs.
    np.testing.assert_array_equal(x_train[1, -1], y_train[0, 0])
    original = scaler.inverse_transform(y_test[:1, :, 0], columns=[0])
    assert np.all(np.isfinite(original))


@pytest.mark.backend_independent
def test_sequential_fashion_mnist_from_the_shared_copy(monkeypatch):
    root = shared_data_dir()
    if not os.path.isdir(os.path.join(root, "fashion-mnist")):
        pytest.skip("the shared Fashion-MNIST data is not available")
    monkeypatch.setenv("KERAS_SSM_DATA", root)
    _offline(monkeypatch)
    (x, y), (x_val, _), (x_test, _) = datasets.fashion_mnist.load_data(
        permuted=True, max_train=50, max_test=10
    )
    assert x.shape == (45, 784, 1) and x_val.shape == (5, 784, 1)
    assert x_test.shape == (10, 784, 1) and y.dtype == np.int32


@pytest.mark.backend_independent
def test_pathfinder_as_dataset_reads_the_same_standardised_pixels(
    monkeypatch,
):
    _offline(monkeypatch)
    sizes = {"num_train": 6, "num_validation": 3, "num_test": 2}
    arrays = datasets.pathfinder.load_data(**sizes)
    train, val, test = datasets.pathfinder.load_data(
        as_dataset=True, batch_size=2, **sizes
    )
    assert len(train) == 3 and len(val) == 2 and len(test) == 1
    x = np.concatenate([val[i][0] for i in range(len(val))])
    y = np.concatenate([val[i][1] for i in range(len(val))])
    np.testing.assert_allclose(x, arrays[1][0], atol=1e-4)
    np.testing.assert_array_equal(y, arrays[1][1])
    seen = np.concatenate([train[i][1] for i in range(len(train))])
    assert sorted(seen) == sorted(arrays[0][1])  # shuffled, not lost


def test_forecaster_preset_trains_on_ett(shared_data, monkeypatch):
    from keras_ssm.models import SSMForecaster

    _offline(monkeypatch)
    (x, y), _, (x_test, y_test), _ = datasets.load_preset_data("s4d_etth1_cpu")
    model = SSMForecaster.from_preset("s4d_etth1_cpu", num_layers=1)
    recipe = model.compile_from_preset("s4d_etth1_cpu")
    history = model.fit(
        x[:64], y[:64], batch_size=recipe["batch_size"], epochs=1, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(x_test[:4], verbose=0).shape == (4, 24, 1)


SIZES = {"num_train": 6, "num_validation": 2, "num_test": 2, "max_length": 24}


def _corrupt_truncated(path):
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


def _corrupt_garbage(path):
    open(path, "wb").write(b"not a zip file at all" * 10)


def _corrupt_empty(path):
    open(path, "wb").close()


def _corrupt_wrong_keys(path):
    np.savez(path, train_x=np.zeros((6, 24), "int32"))


def _corrupt_wrong_shapes(path):
    arrays = dict(np.load(path))
    arrays["train_x"] = arrays["train_x"][:, :5]
    np.savez(path, **arrays)


def _corrupt_labels(path):
    arrays = dict(np.load(path))
    arrays["test_y"] = arrays["test_y"] + 10
    np.savez(path, **arrays)


def _corrupt_pickled_objects(path):
    arrays = dict(np.load(path))
    arrays["train_x"] = np.asarray([[1], [2, 3]] * 3, dtype=object)
    np.savez(path, **arrays)


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "corrupt",
    [
        _corrupt_truncated,
        _corrupt_garbage,
        _corrupt_empty,
        _corrupt_wrong_keys,
        _corrupt_wrong_shapes,
        _corrupt_labels,
        _corrupt_pickled_objects,
    ],
)
def test_a_corrupt_generated_cache_is_regenerated_and_named(
    tmp_path, monkeypatch, corrupt
):
    _offline(monkeypatch)
    first = datasets.listops.load_data(seed=3, **SIZES)
    (name,) = os.listdir(tmp_path / "cache" / "generated")
    path = str(tmp_path / "cache" / "generated" / name)
    corrupt(path)
    with pytest.warns(UserWarning, match=f"{name}.*regenerating"):
        again = datasets.listops.load_data(seed=3, **SIZES)
    for (a, b), (c, d) in zip(first, again):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    # The file was replaced by a good one: read again without a warning.
    assert os.listdir(tmp_path / "cache" / "generated") == [name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        third = datasets.listops.load_data(seed=3, **SIZES)
    np.testing.assert_array_equal(third[0][0], first[0][0])


@pytest.mark.backend_independent
def test_a_read_only_cache_still_returns_the_data(tmp_path, monkeypatch):
    from keras_ssm.datasets import generated

    _offline(monkeypatch)
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway: refuse as the OS would

        def refuse(target, suffix=".part"):
            raise PermissionError(13, "Permission denied", str(target))

        monkeypatch.setattr(generated, "private_partial", refuse)
    try:
        with pytest.warns(UserWarning, match="Could not write.*not cached"):
            (x, y), _, _ = datasets.listops.load_data(seed=4, **SIZES)
    finally:
        cache.chmod(0o755)
    assert x.shape == (6, 24) and y.shape == (6,)
    assert not os.path.exists(cache / "generated") or not os.listdir(
        cache / "generated"
    )


@pytest.mark.backend_independent
def test_generated_cache_files_are_readable_as_the_umask_allows(tmp_path):
    old = os.umask(0o022)
    try:
        datasets.listops.load_data(seed=5, **SIZES)
    finally:
        os.umask(old)
    (name,) = os.listdir(tmp_path / "cache" / "generated")
    mode = os.stat(tmp_path / "cache" / "generated" / name).st_mode & 0o777
    assert mode == 0o644


def _tiny_classifier(num_classes=10):
    import keras

    from keras_ssm.models import SSMBackbone
    from keras_ssm.models import SSMClassifier

    model = SSMClassifier(
        SSMBackbone(
            "s4d",
            num_layers=1,
            hidden_dim=4,
            d_state=4,
            sequence_length=6,
            vocabulary_size=5,
        ),
        num_classes=num_classes,
    )
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def test_classifier_refuses_out_of_range_labels_on_every_backend():
    # JAX gathers label 15 of 10 classes silently and trains on a finite
    # loss; every backend must refuse it before training.
    model = _tiny_classifier()
    x = np.ones((4, 6), "int32")
    weights = [w.copy() for w in model.get_weights()]
    for bad in ([0, 1, 15, 2], [0, -1, 2, 3], [0.5, 1, 2, 3]):
        with pytest.raises(ValueError, match="`y`.*(num_classes=10|integer)"):
            model.fit(x, np.asarray(bad), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="validation_data.*num_classes=10"):
        model.fit(
            x,
            np.arange(4),
            epochs=1,
            verbose=0,
            validation_data=(x, np.full(4, 10)),
        )
    with pytest.raises(ValueError, match="`y`.*num_classes=10"):
        model.evaluate(x, np.full(4, 12), verbose=0)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)  # nothing trained
    history = model.fit(x, np.asarray([0, 9, 3, 4]), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_classifier_refuses_empty_inputs_with_a_clear_error():
    model = _tiny_classifier()
    with pytest.raises(ValueError, match="`x` holds no examples"):
        model.fit(np.ones((0, 6), "int32"), np.zeros(0, "int32"), verbose=0)
    with pytest.raises(ValueError, match="`y` is empty"):
        model.evaluate(np.ones((2, 6), "int32"), np.zeros(0), verbose=0)


@pytest.mark.backend_independent
def test_check_class_labels_accepts_sparse_and_one_hot_labels():
    from keras_ssm.utils.validation import check_class_labels

    assert check_class_labels("`y`", [[0], [2]], 3).shape == (2, 1)
    assert check_class_labels("`y`", np.eye(3)[[0, 2]], 3).shape == (2, 3)
    assert check_class_labels("`y`", np.asarray([1.0, 2.0]), 3).shape == (2,)
    with pytest.raises(ValueError, match="3 class probabilities a row"):
        check_class_labels("`y`", np.eye(4), 3)
    with pytest.raises(ValueError, match="non-finite"):
        check_class_labels("`y`", [0.0, np.nan], 3)
    with pytest.raises(ValueError, match="numeric"):
        check_class_labels("`y`", np.asarray(["a", "b"]), 3)
