"""Sequential (and permuted) Fashion-MNIST: 784-step pixel sequences."""

from keras_ssm.datasets.mnist import load_sequential_mnist


def load_data(permuted=False, max_train=None, max_test=None, seed=0):
    """Sequential (or permuted) Fashion-MNIST.

    The IDX files are read from `$KERAS_SSM_DATA/fashion-mnist/`, or
    downloaded into the cache and checked against their MD5s.

    Args:
        permuted: apply one fixed, seeded pixel permutation.
        max_train: keep at most this many training images (10% of them
            are the validation split).
        max_test: keep at most this many test images.
        seed: seed of the split and of the permutation.

    Returns:
        `(x_train, y_train), (x_val, y_val), (x_test, y_test)`: float32
        (n, 784, 1) standardised with the training statistics, int32
        labels.

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
