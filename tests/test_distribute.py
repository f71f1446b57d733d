"""Data-parallel training: two devices follow the one-device trajectory.

Simulated host devices must exist before the backend starts, so the JAX and
TensorFlow comparisons run in a fresh subprocess per backend.
"""

import json
import os
import textwrap

import keras
import numpy as np
import pytest

from applications.common.distribute import TORCH_HELP
from applications.common.distribute import data_parallel
from tests.helpers import run_python

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Trains the same S4D model with 1 and 2 devices (same global batch) and
# prints the per-epoch losses, replica counts and final weights' distance.
TRAJECTORY_SCRIPT = textwrap.dedent(
    """
    import json
    import os
    import sys

    import keras
    import numpy as np

    from applications.common.distribute import data_parallel
    from applications.common.distribute import simulate_host_devices

    simulate_host_devices(2)  # JAX: XLA_FLAGS already set by the parent.
    x = np.random.RandomState(0).randn(32, 12, 4).astype("float32")
    y = np.random.RandomState(1).randn(32, 1).astype("float32")


    def replicas(strategy):
        if hasattr(strategy, "num_replicas_in_sync"):
            return strategy.num_replicas_in_sync
        return int(np.prod(strategy.device_mesh.shape))


    def train(num_devices):
        keras.utils.set_random_seed(3)
        with data_parallel(num_devices=num_devices) as strategy:
            from keras_ssm.layers import S4DBlock

            model = keras.Sequential(
                [
                    keras.Input((12, 4)),
                    S4DBlock(d_state=8),
                    keras.layers.GlobalAveragePooling1D(),
                    keras.layers.Dense(1),
                ]
            )
            model.compile(optimizer=keras.optimizers.SGD(0.2), loss="mse")
            history = model.fit(
                x, y, batch_size=16, epochs=4, shuffle=False, verbose=0
            )
            weights = [np.asarray(w) for w in model.get_weights()]
        return history.history["loss"], replicas(strategy), weights


    one, one_replicas, one_weights = train(1)
    two, two_replicas, two_weights = train(2)
    diff = max(
        float(np.max(np.abs(a - b))) for a, b in zip(one_weights, two_weights)
    )
    print(json.dumps({
        "one": one, "two": two, "replicas": [one_replicas, two_replicas],
        "weight_diff": diff,
    }))
    """
)


def _run_trajectories(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=ROOT)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if backend == "jax":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    result = run_python(["-c", TRAJECTORY_SCRIPT], env)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() == "torch", reason="no distribution API on torch"
)
def test_two_devices_follow_one_device_loss_trajectory(backend):
    report = _run_trajectories(backend)
    assert report["replicas"] == [1, 2]
    one, two = np.array(report["one"]), np.array(report["two"])
    # Training moved the loss, so equal trajectories are not trivial.
    assert one[-1] < one[0] - 1e-3
    np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-5)
    assert report["weight_diff"] < 1e-4


def test_disabled_is_a_no_op():
    with data_parallel(enabled=False) as strategy:
        assert strategy is None
        layer = keras.layers.Dense(2)
        layer.build((None, 3))
    assert keras.distribution.distribution() is None


@pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="torch-only message"
)
def test_torch_raises_with_instructions():
    with pytest.raises(RuntimeError, match="torchrun"):
        with data_parallel():
            pass
    assert "KERAS_BACKEND=jax" in TORCH_HELP


@pytest.mark.skipif(
    keras.backend.backend() == "torch", reason="no distribution API on torch"
)
@pytest.mark.parametrize("num_devices", [0, 1000, 1.5])
def test_bad_num_devices_names_the_argument(num_devices):
    with pytest.raises(ValueError, match="num_devices"):
        with data_parallel(num_devices=num_devices):
            pass


@pytest.mark.skipif(
    keras.backend.backend() == "torch", reason="no distribution API on torch"
)
def test_scope_is_left_on_exit(backend):
    with data_parallel(num_devices=1) as strategy:
        assert strategy is not None
        if backend == "jax":
            assert keras.distribution.distribution() is strategy
    if backend == "jax":
        assert keras.distribution.distribution() is None
    else:
        import tensorflow as tf

        assert not tf.distribute.has_strategy()
