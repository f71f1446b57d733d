"""LRA data: generators (validity, determinism, balance) and loaders.

The loaders are tested on small stand-in files that the tests create; no
test touches the network.
"""

import gzip
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from keras_ssm.datasets import aan as retrieval
from keras_ssm.datasets import imdb_bytes as text
from keras_ssm.datasets import listops
from keras_ssm.datasets import lra_files as download
from keras_ssm.datasets import mnist
from keras_ssm.datasets import pathfinder
from tests.conftest import shared_data_dir

# The same under every backend (NumPy data sets and files).
pytestmark = pytest.mark.backend_independent

# Read before the fixture below points KERAS_SSM_DATA at a temporary folder.
SHARED_DATA = shared_data_dir()


def evaluate_expression(source):
    """Independent ListOps evaluator: a stack machine over the tokens."""
    stack = []
    for token in source.replace("(", " ").replace(")", " ").split():
        if token.startswith("["):
            stack.append((token, []))
        elif token == "]":
            operator, args = stack.pop()
            if operator == "[MIN":
                value = min(args)
            elif operator == "[MAX":
                value = max(args)
            elif operator == "[MED":
                ordered = sorted(args)
                middle = len(ordered) // 2
                if len(ordered) % 2:
                    value = ordered[middle]
                else:  # the mean of the two middle values, truncated
                    value = (ordered[middle - 1] + ordered[middle]) // 2
            elif operator == "[SM":
                value = sum(args) % 10
            else:
                raise AssertionError(f"unknown operator {operator}")
            if not stack:
                return value
            stack[-1][1].append(value)
        else:
            stack[-1][1].append(int(token))
    raise AssertionError("unterminated expression")


@pytest.fixture(autouse=True)
def _isolated_data_dirs(tmp_path, monkeypatch):
    """Empty data and cache directories for every test."""
    monkeypatch.setenv("KERAS_SSM_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("KERAS_SSM_CACHE", str(tmp_path / "cache"))


def test_listops_answers_match_an_independent_evaluator():
    x, y = listops.generate_listops(60, seed=3, min_length=5, max_length=80)
    assert x.shape == (60, 80) and x.dtype == np.int32
    for ids, label in zip(x, y):
        expression = listops.decode(ids)
        assert evaluate_expression(expression) == label
        length = int((ids != 0).sum())
        assert 5 <= length <= 80
        assert np.all(ids[length:] == 0)  # padding only at the end


def test_listops_is_deterministic_and_balanced():
    a = listops.generate_listops(50, seed=7, min_length=10, max_length=60)
    b = listops.generate_listops(50, seed=7, min_length=10, max_length=60)
    c = listops.generate_listops(50, seed=8, min_length=10, max_length=60)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    np.testing.assert_array_equal(np.bincount(a[1], minlength=10), [5] * 10)
    # Unbalanced mode keeps the generator's own label frequencies.
    _, y = listops.generate_listops(
        40, seed=7, min_length=10, max_length=60, balanced=False
    )
    assert y.shape == (40,) and set(y) <= set(range(10))


def test_listops_lra_lengths_and_depth():
    x, y = listops.generate_listops(2, seed=0)  # LRA: 500-2000 tokens
    lengths = (x != 0).sum(axis=1)
    assert x.shape == (2, 2000) and np.all((lengths >= 500) & (lengths <= 2000))
    for ids, label in zip(x, y):
        assert evaluate_expression(listops.decode(ids)) == label
        depth = max_depth = 0
        for token in listops.decode(ids).split():
            depth += token.startswith("[")
            depth -= token == "]"
            max_depth = max(max_depth, depth)
        assert max_depth <= 10


def test_listops_tsv_roundtrip_and_errors(tmp_path):
    x, y = listops.generate_listops(12, seed=1, min_length=5, max_length=40)
    path = str(tmp_path / "basic_train.tsv")
    listops.save_tsv(path, x, y)
    with open(path) as f:
        first = f.read().splitlines()[1]
    assert first.startswith("(")  # LRA source format, with parentheses
    x2, y2 = listops.load_tsv(path, length=40)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    with pytest.raises(FileNotFoundError, match="lra_release"):
        listops.load_tsv(str(tmp_path / "missing.tsv"))
    with pytest.raises(ValueError, match="max_length"):
        listops.generate_expression(np.random, min_length=9, max_length=3)


def _component_at(components, point):
    """Largest component label in the 3x3 neighbourhood of (x, y)."""
    x, y = int(point[0]), int(point[1])
    window = components[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]
    return int(window.max())


@pytest.mark.parametrize(
    "size, contour_length, bridge",
    [(32, 9, 1), (32, 14, 1), (64, 14, 1), (128, 14, 2)],
)
def test_pathfinder_labels_match_connectivity(size, contour_length, bridge):
    from scipy import ndimage

    images, labels, dots = pathfinder.generate_pathfinder(
        12, size, contour_length, seed=2, return_dots=True
    )
    assert images.shape == (12, size, size) and images.dtype == np.uint8
    assert labels.sum() == 6  # balanced
    for image, label, (a, b) in zip(images, labels, dots):
        # Dots are drawn where they are said to be.
        assert image[int(a[1]), int(a[0])] > 200
        assert image[int(b[1]), int(b[0])] > 200
        # Bridge the gaps between dashes (wider at Path-X scale), then ask
        # whether one connected component holds both dots.
        strokes = ndimage.binary_dilation(image > 60, iterations=bridge)
        components, _ = ndimage.label(strokes)
        first, second = (
            _component_at(components, a),
            _component_at(components, b),
        )
        assert first > 0 and second > 0
        assert (first == second) == bool(label)


def test_pathfinder_is_deterministic_and_scales():
    a = pathfinder.generate_pathfinder(2, image_size=32, seed=5)
    b = pathfinder.generate_pathfinder(2, image_size=32, seed=5)
    np.testing.assert_array_equal(a[0], b[0])
    big, _ = pathfinder.generate_pathfinder(
        1, image_size=64, contour_length=6, seed=5
    )
    assert big.shape == (1, 64, 64) and big.max() > 200
    seq = pathfinder.images_to_sequences(a[0])
    assert seq.shape == (2, 1024, 1)
    assert abs(seq.mean()) < 1e-4
    with pytest.raises(ValueError, match="image_size"):
        pathfinder.generate_pathfinder(1, image_size=8)


def test_pathfinder_release_loader(tmp_path):
    from PIL import Image

    root = tmp_path / "curv_contour_length_14"
    (root / "metadata").mkdir(parents=True)
    (root / "imgs" / "0").mkdir(parents=True)
    images, labels = pathfinder.generate_pathfinder(2, seed=0)
    rows = []
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image).save(root / "imgs" / "0" / f"sample_{i}.png")
        rows.append(f"imgs/0 sample_{i}.png 0 {label} 14 0")
    (root / "metadata" / "0.npy").write_text("\n".join(rows) + "\n")
    loaded, loaded_labels = pathfinder.load_release(str(root), 32)
    np.testing.assert_array_equal(loaded, images)
    np.testing.assert_array_equal(loaded_labels, labels)


def _idx_bytes(array):
    codes = {np.uint8: 0x08}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def test_idx_reader_and_sequential_mnist_on_stand_in_files(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (20, 28, 28)),
        "train-labels-idx1-ubyte.gz": np.arange(20) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": np.arange(5),
    }
    for name, array in arrays.items():
        with gzip.open(folder / name, "wb") as f:
            f.write(_idx_bytes(array.astype("uint8")))
    read = mnist.read_idx(str(folder / "t10k-images-idx3-ubyte.gz"))
    np.testing.assert_array_equal(read, arrays["t10k-images-idx3-ubyte.gz"])

    splits = mnist.load_sequential_mnist("mnist", validation_fraction=0.25)
    x, y = splits["train"]
    assert x.shape == (15, 784, 1) and splits["validation"][0].shape[0] == 5
    assert abs(float(x.mean())) < 1e-4  # standardised on the train split
    test_x, test_y = splits["test"]
    raw = arrays["t10k-images-idx3-ubyte.gz"].reshape(5, -1)
    order = np.argsort(raw[0])
    assert np.all(np.diff(test_x[0, order, 0]) >= 0)  # raster order kept
    np.testing.assert_array_equal(test_y, np.arange(5))

    permuted = mnist.load_sequential_mnist(
        "mnist", permuted=True, validation_fraction=0.25
    )
    same_pixels = np.sort(permuted["test"][0][0, :, 0])
    np.testing.assert_allclose(same_pixels, np.sort(test_x[0, :, 0]), rtol=1e-5)
    assert not np.allclose(permuted["test"][0][0], test_x[0])

    (folder / "bad.gz").write_bytes(gzip.compress(b"\x01\x02\x08\x01"))
    with pytest.raises(ValueError, match="IDX"):
        mnist.read_idx(str(folder / "bad.gz"))


def test_fashion_mnist_shared_files(monkeypatch):
    folder = os.path.join(SHARED_DATA, "fashion-mnist")
    if not os.path.isdir(folder):
        pytest.skip("Fashion-MNIST IDX files are not beside the repository.")
    monkeypatch.setenv("KERAS_SSM_DATA", SHARED_DATA)
    splits = mnist.load_sequential_mnist(
        "fashion-mnist", max_train=100, max_test=50
    )
    assert splits["train"][0].shape == (90, 784, 1)
    assert splits["test"][0].shape == (50, 784, 1)
    assert set(np.unique(splits["test"][1])) <= set(range(10))


def test_fetch_checks_checksums_and_reports_offline(tmp_path):
    source = tmp_path / "file.bin"
    source.write_bytes(b"keras-ssm")
    url = source.as_uri()
    sha = download.file_digest(str(source))
    path = download.fetch(url, "file.bin", "demo", sha256=sha, progress=False)
    assert open(path, "rb").read() == b"keras-ssm"
    assert path.startswith(str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="Checksum mismatch"):
        download.fetch(url, "other.bin", "demo", md5="0" * 32)
    assert not os.path.exists(tmp_path / "cache" / "demo" / "other.bin")
    with pytest.raises(download.DataUnavailableError, match="offline"):
        download.fetch("http://127.0.0.1:9/missing.gz", "missing.gz", "demo")
    # No published checksum: the first download's SHA-256 is recorded and a
    # changed file is caught afterwards.
    first = download.fetch(url, "tofu.bin", "demo", progress=False)
    with open(first, "ab") as f:
        f.write(b"!")
    with pytest.raises(ValueError, match="Checksum mismatch"):
        download.fetch(url, "tofu.bin", "demo")


def _tar_gz(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_text_loader_on_a_stand_in_archive(tmp_path):
    members = {}
    for split in ("train", "test"):
        for polarity, review in (("neg", "bad film"), ("pos", "great é")):
            for i in range(2):
                name = f"aclImdb/{split}/{polarity}/{i}_1.txt"
                members[name] = review.encode()
    archive = tmp_path / "aclImdb_v1.tar.gz"
    _tar_gz(archive, members)
    sha = download.file_digest(str(archive))
    splits = text.load_text(
        length=12, validation_fraction=0.25, url=archive.as_uri(), sha256=sha
    )
    x, y = splits["test"]
    assert x.shape == (4, 12) and list(y) == [0, 0, 1, 1]
    expected = np.frombuffer("great é".encode(), np.uint8).astype("int32") + 1
    np.testing.assert_array_equal(x[2, : expected.size], expected)
    assert np.all(x[2, expected.size :] == 0)
    assert len(splits["train"][1]) == 3 and len(splits["validation"][1]) == 1
    with pytest.raises(ValueError, match="Checksum mismatch"):
        text.load_text(url=archive.as_uri(), sha256="0" * 64)


def test_image_loader_on_a_stand_in_archive(tmp_path):
    from keras_ssm.datasets import cifar_gray as image

    rng = np.random.default_rng(0)
    members = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (4, 3072)).astype("uint8"),
            b"labels": list(range(4)),
        }
        members[f"cifar-10-batches-py/{name}"] = pickle.dumps(batch)
    archive = tmp_path / "cifar-10-python.tar.gz"
    _tar_gz(archive, members)
    md5 = download.file_digest(str(archive), "md5")
    splits = image.load_image(url=archive.as_uri(), md5=md5)
    x, y = splits["test"]
    assert x.shape == (4, 1024, 1) and list(y) == [0, 1, 2, 3]
    assert splits["train"][0].shape[0] + splits["validation"][0].shape[0] == 20
    # Grayscale by the luma weights, then an affine standardisation.
    raw = pickle.loads(members["cifar-10-batches-py/test_batch"])[b"data"]
    planes = raw.reshape(4, 3, 1024).astype("float64")
    luma = planes[:, 0] * 0.2989 + planes[:, 1] * 0.5870 + planes[:, 2] * 0.1140
    correlation = np.corrcoef(x[..., 0].ravel(), luma.ravel())[0, 1]
    assert correlation > 0.99999
    pixel = np.zeros((1, 32, 32, 3), "uint8")
    pixel[0, 0, 0] = (255, 0, 0)
    gray = image.to_grayscale_sequences(pixel)
    np.testing.assert_allclose(gray[0, 0, 0], 0.2989, rtol=1e-6)
    assert gray[0, 1, 0] == 0


def test_retrieval_pairs_reader(tmp_path):
    directory = tmp_path / "tsv_data"
    directory.mkdir()
    for name in ("train", "eval", "test"):
        rows = ["1\tid1\tid2\tfirst paper\tsecond", "0\ta\tb\tx\tyy"]
        (directory / f"new_aan_pairs.{name}.tsv").write_text(
            "\n".join(rows) + "\n"
        )
    splits = retrieval.load_retrieval(length=8, directory=str(directory))
    (first, second), labels = splits["validation"]
    assert first.shape == (2, 8) and second.shape == (2, 8)
    assert list(labels) == [1, 0]
    np.testing.assert_array_equal(
        second[1, :3], [ord("y") + 1, ord("y") + 1, 0]
    )
    (directory / "new_aan_pairs.test.tsv").write_text("1\tonly\n")
    with pytest.raises(ValueError, match="5 tab-separated"):
        retrieval.read_pairs_tsv(str(directory / "new_aan_pairs.test.tsv"))


def test_extract_tar_leaves_no_temporary_directory(tmp_path):
    from keras_ssm.datasets.lra_files import extract_tar

    archive = tmp_path / "a.tar.gz"
    _tar_gz(archive, {"data/marker.txt": b"x", "data/b.txt": b"y"})
    destination = tmp_path / "out" / "a"
    assert extract_tar(str(archive), str(destination), "data/marker.txt")
    assert (destination / "data" / "b.txt").read_bytes() == b"y"
    assert os.listdir(tmp_path / "out") == ["a"]
    # The marker is missing: an error, and still nothing left behind.
    _tar_gz(archive, {"other/b.txt": b"y"})
    with pytest.raises(ValueError, match="expected 'nothing'"):
        extract_tar(str(archive), str(tmp_path / "out" / "c"), "nothing")
    assert sorted(os.listdir(tmp_path / "out")) == ["a", "c"]


def test_loaders_check_labels_against_the_classes(tmp_path):
    # ListOps TSV: answers are 0-9.
    path = tmp_path / "basic_test.tsv"
    path.write_text("Source\tTarget\n( [MAX 2 3 ] )\t3\n( [MIN 2 3 ] )\t15\n")
    with pytest.raises(
        ValueError, match=r"basic_test.tsv.*\[2?3?.*15\].*\[0, 9\]"
    ):
        listops.load_tsv(str(path), length=8)
    # AAN pairs: labels 0 or 1.
    pairs = tmp_path / "new_aan_pairs.train.tsv"
    pairs.write_text("1\ta\tb\tx\ty\n2\ta\tb\tx\ty\n")
    with pytest.raises(ValueError, match=r"new_aan_pairs.*num_classes=2"):
        retrieval.read_pairs_tsv(str(pairs))
    # IDX labels: 0-9.
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    arrays = {
        "train-images-idx3-ubyte.gz": np.zeros((4, 28, 28)),
        "train-labels-idx1-ubyte.gz": np.asarray([0, 1, 12, 3]),
        "t10k-images-idx3-ubyte.gz": np.zeros((2, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": np.asarray([0, 1]),
    }
    for name, array in arrays.items():
        with gzip.open(folder / name, "wb") as f:
            f.write(_idx_bytes(array.astype("uint8")))
    with pytest.raises(ValueError, match=r"mnist train labels.*\[0, 9\]"):
        mnist.load_sequential_mnist("mnist")
    # Pathfinder release: 0 or 1.
    from PIL import Image

    release = tmp_path / "curv_contour_length_14"
    (release / "metadata").mkdir(parents=True)
    (release / "imgs").mkdir()
    Image.fromarray(np.zeros((32, 32), "uint8")).save(
        release / "imgs" / "a.png"
    )
    (release / "metadata" / "0.npy").write_text("imgs a.png 0 7\n")
    with pytest.raises(ValueError, match=r"metadata.*num_classes=2"):
        pathfinder.load_release(str(release))


def test_loaders_refuse_empty_files_by_name(tmp_path):
    path = tmp_path / "basic_val.tsv"
    path.write_text("Source\tTarget\n")
    with pytest.raises(ValueError, match="basic_val.tsv holds no examples"):
        listops.load_tsv(str(path))
    pairs = tmp_path / "new_aan_pairs.eval.tsv"
    pairs.write_text("")
    with pytest.raises(ValueError, match="new_aan_pairs.eval.tsv holds no"):
        retrieval.read_pairs_tsv(str(pairs))
    for polarity in ("neg", "pos"):
        (tmp_path / "aclImdb" / "train" / polarity).mkdir(parents=True)
    with pytest.raises(ValueError, match="train holds no reviews"):
        text.read_imdb_directory(str(tmp_path / "aclImdb"), "train", 8)


@pytest.mark.parametrize("module", [listops, pathfinder])
def test_size_errors_name_the_argument_and_refuse_absurd_sizes(module):
    small = {"num_train": 4, "num_validation": 2, "num_test": 2}
    with pytest.raises(ValueError, match="`num_train` must be an integer >= 1"):
        module.load_data(**{**small, "num_train": 0})
    with pytest.raises(TypeError, match="`num_validation` must be an integer"):
        module.load_data(**{**small, "num_validation": 2.5})
    with pytest.raises(TypeError, match="`num_test` must be an integer"):
        module.load_data(**{**small, "num_test": "2"})
    # A billion examples is refused before anything is allocated.
    with pytest.raises(
        ValueError, match=r"num_train=1000000000.*GiB.*`num_train`"
    ):
        module.load_data(**{**small, "num_train": 10**9})


def test_generators_refuse_bad_sizes_by_name():
    with pytest.raises(TypeError, match="`num_examples` must be an integer"):
        listops.generate_listops(3.0)
    with pytest.raises(ValueError, match="GiB"):
        listops.generate_listops(10**12, max_length=8)
    with pytest.raises(TypeError, match="`image_size` must be an integer"):
        pathfinder.generate_pathfinder(2, image_size=32.0)
    with pytest.raises(ValueError, match="GiB"):
        pathfinder.generate_pathfinder(10**12)
    with pytest.raises(ValueError, match="`max_train`"):
        mnist.load_sequential_mnist("mnist", max_train=0)
