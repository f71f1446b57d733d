"""Multi-worker data parallelism for the TensorFlow backend.

`tf.distribute.MultiWorkerMirroredStrategy` reads the cluster from
`TF_CONFIG` (the same JSON on every worker except `task.index`), mirrors
the variables on every worker and all-reduces the gradients. The batch size
given to `fit` stays global: the strategy splits each global batch over all
replicas of all workers.
"""

DEFAULT_TIMEOUT_SECONDS = 300

_STRATEGY = None


def strategy(timeout_seconds=DEFAULT_TIMEOUT_SECONDS):
    """The process' `MultiWorkerMirroredStrategy` (created once).

    TensorFlow requires it to be created before the first TensorFlow
    operation of the program, so create it (or call
    `keras_ssm.distribute.initialize()`) early.

    Args:
        timeout_seconds: how long a collective waits for the other workers
            before failing, instead of hanging when a worker died.

    Returns:
        The `tf.distribute.MultiWorkerMirroredStrategy`.
    """
    global _STRATEGY
    if _STRATEGY is None:
        import tensorflow as tf

        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=float(timeout_seconds)
        )
        _STRATEGY = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=options
        )
    return _STRATEGY
