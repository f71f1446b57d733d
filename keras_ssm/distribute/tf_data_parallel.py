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


def prepare_model(model):
    """Adapts Keras' TensorFlow trainer to `MultiWorkerMirroredStrategy`.

    Keras 3.15 runs `fit` under this strategy except for two reductions:

    * before the first step it reduces the first distributed batch to learn
      its shapes, passing the whole `(x, y)` structure to
      `strategy.reduce`, which this strategy rejects (it reduces one tensor
      at a time). The shapes are those of any replica's part, so the first
      local replica's part is used instead (which also spares a
      collective);
    * it averages each step's logs over the workers with
      `strategy.reduce("MEAN", value, axis=0)`, which fails for the scalar
      logs; the steps return them with shape `(1,)`, so the same reduction
      averages them over the replicas into scalars.

    Args:
        model: a Keras model built in the strategy's scope.

    Returns:
        The same model, changed in place.
    """
    import types

    import tensorflow as tf

    if getattr(model, "_keras_ssm_data_parallel", False):
        return model
    model._keras_ssm_data_parallel = True
    strategy_ = strategy()

    def local_part(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy_.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(local_part, next(batches))
                break
        with strategy_.scope():
            self._symbolic_build(data_batch=data_batch)

    def with_vector_logs(step):
        def vector_logs_step(self, data):
            logs = step(data)
            return tf.nest.map_structure(
                lambda v: tf.reshape(v, (1,)) if v.shape.rank == 0 else v,
                logs,
            )

        return vector_logs_step

    model._maybe_symbolic_build = types.MethodType(maybe_symbolic_build, model)
    model.train_step = types.MethodType(
        with_vector_logs(model.train_step), model
    )
    model.test_step = types.MethodType(with_vector_logs(model.test_step), model)
    return model
