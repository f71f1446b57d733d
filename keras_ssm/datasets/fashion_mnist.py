"""Sequential (and permuted) Fashion-MNIST: 784-step pixel sequences."""

from keras_ssm.datasets.mnist import load_sequential_mnist


def load_data(permuted=False, max_train=None, max_test=None, seed=0):
    """Sequential (or permuted) Fashion-MNIST: 784-step pixel sequences.

    The IDX files are read from `$KERAS_SSM_DATA/fashion-mnist/`, or
    downloaded into the cache and checked against their MD5s. The
    arguments (`permuted`, `max_train`, `max_test`, `seed`) and the
    returned splits are those of `keras_ssm.datasets.mnist.load_data`.

    Example:

    ```python
    (x_train, y_train), _, (x_test, y_test) = load_data(max_train=1000)
    ```
    """
    splits = load_sequential_mnist(
        "fashion-mnist",
        permuted,
        max_train=max_train,
        max_test=max_test,
        seed=seed,
    )
    return splits["train"], splits["validation"], splits["test"]
