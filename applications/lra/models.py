"""LRA classifiers: embedding, residual blocks of a backbone, pooling, head.

    tokens  -> Embedding          \\
                                   -> [LipschitzRegularization]
    pixels  -> Dense (linear)     /   -> depth x residual block
                                      -> LayerNorm -> masked mean -> Dense

Retrieval encodes both documents with the same tower and classifies the
standard matching features [u, v, u * v, u - v] with a two-layer MLP.

Backbones (each block is residual and keeps the width `d_model`):

- `s4d`: `keras_ssm.layers.S4DBlock`;
- `etsmlp` / `etsmlp_gate`: `keras_ssm.layers.ETSMLPBlock` (gated or not);
- `mamba`: `keras_ssm.layers.MambaBlock`;
- `transformer`: keras-hub's `TransformerEncoder` (pre-norm) with a learned
  `PositionEmbedding` added to the embedding.

Layers are imported inside `make_block`, so a backbone whose layer is
missing (or whose optional dependency, keras-hub, is not installed) fails
alone with a clear error and the others still build.
"""

import keras

from applications.lra.tasks import TaskSpec
from applications.lra.tasks import get_task

BACKBONES = ("s4d", "etsmlp", "etsmlp_gate", "mamba", "transformer")

# Block arguments each backbone understands (besides `layer_kwargs`).
_BLOCK_ARGUMENTS = {
    "s4d": ("d_state", "norm", "prenorm", "dropout", "bidirectional"),
    "etsmlp": ("norm", "dropout", "bidirectional", "activation"),
    "etsmlp_gate": ("norm", "dropout", "bidirectional", "activation"),
    "mamba": (
        "d_state",
        "d_conv",
        "expand",
        "norm",
        "bidirectional",
        "dropout",
        "num_layers",
    ),
    "transformer": ("num_heads", "dropout"),
}


def make_block(backbone, d_model, block, name=None):
    """One residual block of `backbone` for width `d_model`.

    Args:
        backbone: one of `BACKBONES`.
        d_model: model width (the blocks infer it from their input; it sets
            the hidden sizes of ETSMLP and the Transformer).
        block: dict of block settings: `d_state`, `norm`, `prenorm`,
            `dropout`, `bidirectional`, `hidden_ratio` (ETSMLP hidden width
            / d_model), `d_conv`, `expand` (Mamba), `num_heads`, `mlp_ratio`
            (Transformer), and `layer_kwargs` passed to the layer as is.
        name: layer name.

    Returns:
        A Keras layer mapping (batch, length, d_model) to itself.
    """
    if backbone not in BACKBONES:
        raise ValueError(
            f"`backbone` must be one of {BACKBONES}; got {backbone!r}."
        )
    kwargs = {k: block[k] for k in _BLOCK_ARGUMENTS[backbone] if k in block}
    kwargs.update(block.get("layer_kwargs", {}))
    try:
        if backbone == "s4d":
            from keras_ssm.layers import S4DBlock

            return S4DBlock(name=name, **kwargs)
        if backbone in ("etsmlp", "etsmlp_gate"):
            from keras_ssm.layers import ETSMLPBlock

            hidden = int(round(block.get("hidden_ratio", 2) * d_model))
            return ETSMLPBlock(
                hidden, gated=backbone == "etsmlp_gate", name=name, **kwargs
            )
        if backbone == "mamba":
            from keras_ssm.layers import MambaBlock

            return MambaBlock(name=name, **kwargs)
        import keras_hub

        return keras_hub.layers.TransformerEncoder(
            intermediate_dim=int(block.get("mlp_ratio", 2) * d_model),
            num_heads=kwargs.get("num_heads", 4),
            dropout=kwargs.get("dropout", 0.0),
            activation="gelu",
            normalize_first=True,
            name=name,
            **block.get("layer_kwargs", {}),
        )
    except ImportError as error:
        raise ImportError(
            f"The {backbone!r} backbone is not available: {error}. The "
            "other backbones still work."
        ) from error


def _embed(inputs, spec, d_model, sequence_length, backbone, name):
    """Token or linear embedding (+ positions for the Transformer)."""
    if spec.input_kind == "tokens":
        x = keras.layers.Embedding(
            spec.vocab_size, d_model, name=f"{name}embedding"
        )(inputs)
    else:
        x = keras.layers.Dense(d_model, name=f"{name}pixel_embedding")(inputs)
    if backbone == "transformer":
        import keras_hub

        positions = keras_hub.layers.PositionEmbedding(
            sequence_length, name=f"{name}position_embedding"
        )(x)
        x = keras.layers.Add(name=f"{name}add_positions")([x, positions])
    return x


def _encoder(spec, backbone, depth, d_model, sequence_length, block, lipschitz):
    """Tokens or pixels -> pooled (batch, d_model) features, as a Model."""
    if spec.input_kind == "tokens":
        inputs = keras.Input((sequence_length,), dtype="int32", name="tokens")
        mask = keras.ops.not_equal(inputs, 0)
    else:
        inputs = keras.Input((sequence_length, 1), name="pixels")
        mask = None
    x = _embed(inputs, spec, d_model, sequence_length, backbone, "")
    if lipschitz is not None:
        from keras_ssm.layers import LipschitzRegularization

        x = LipschitzRegularization(
            weight=lipschitz["weight"],
            normalize=lipschitz.get("normalize", False),
            name="lipschitz",
        )(x, mask=mask)
    if backbone == "mamba":  # Mamba's 1/sqrt(depth) out_proj init
        block = {"num_layers": depth, **block}
    for i in range(depth):
        layer = make_block(backbone, d_model, block, name=f"block_{i}")
        if backbone == "transformer":
            x = layer(x, padding_mask=mask)
        else:
            x = layer(x, mask=mask)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    pooled = keras.layers.GlobalAveragePooling1D(name="masked_mean")(
        x, mask=mask
    )
    return keras.Model(inputs, pooled, name="encoder")


def build_classifier(
    task,
    backbone="s4d",
    depth=4,
    d_model=128,
    sequence_length=None,
    lipschitz=0.0,
    lipschitz_normalize=False,
    **block,
):
    """An LRA classifier (logits) for `task` with `depth` `backbone` blocks.

    Args:
        task: a task name or `TaskSpec` (sets the input kind, vocabulary,
            classes and whether it is a pair task).
        backbone: one of `BACKBONES`.
        depth: number of residual blocks.
        d_model: model width.
        sequence_length: input length (default: the task's; None-length
            inputs are not used so that every backend compiles one shape).
        lipschitz: weight of `LipschitzRegularization` after the
            embedding; 0 leaves the layer out.
        lipschitz_normalize: the layer's `normalize` option.
        **block: block settings, see `make_block` (`d_state`, `norm`,
            `prenorm`, `dropout`, `bidirectional`, `hidden_ratio`, ...).

    Returns:
        A `keras.Model` whose outputs are float32 logits (batch, classes).
        Pair tasks take a list of two token tensors.

    Example:

    >>> model = build_classifier("listops", "s4d", depth=2, d_model=32,
    ...                          sequence_length=128, d_state=16)
    >>> model.output_shape
    (None, 10)
    """
    spec = task if isinstance(task, TaskSpec) else get_task(task)
    if depth < 1 or d_model < 1:
        raise ValueError(
            f"`depth` and `d_model` must be >= 1; got depth={depth}, "
            f"d_model={d_model}."
        )
    length = sequence_length or spec.sequence_length
    penalty = None
    if lipschitz:
        penalty = {"weight": float(lipschitz), "normalize": lipschitz_normalize}
    encoder = _encoder(spec, backbone, depth, d_model, length, block, penalty)
    head = keras.layers.Dense(spec.num_classes, dtype="float32", name="logits")
    if not spec.pair:
        inputs = encoder.inputs[0]
        return keras.Model(
            inputs, head(encoder.outputs[0]), name=f"{spec.name}_{backbone}"
        )
    first = keras.Input((length,), dtype="int32", name="tokens_1")
    second = keras.Input((length,), dtype="int32", name="tokens_2")
    u, v = encoder(first), encoder(second)
    features = keras.layers.Concatenate(name="matching_features")(
        [u, v, u * v, u - v]
    )
    hidden = keras.layers.Dense(d_model, activation="gelu", name="mlp")(
        features
    )
    return keras.Model(
        [first, second], head(hidden), name=f"{spec.name}_{backbone}"
    )


def compile_classifier(
    model, training, steps_per_epoch=None, epochs=None, **compile_kwargs
):
    """Compiles with AdamW (SSM parameters: no decay, own lr) and the
    preset's warm-up schedule.

    Args:
        model: the classifier.
        training: dict with `learning_rate`, `weight_decay`, optional
            `ssm_learning_rate`, `epochs`, `schedule` (`"cosine"`, the
            default, `"linear"` or `"constant"`; see
            `keras_ssm.schedules.warmup_schedule`), `warmup_steps` or
            `warmup_epochs` (default 0), `final_lr_fraction` (cosine's
            final rate over the peak, default 0) and Adam's `beta_2`
            (default 0.999) and `clipnorm` (default none), and
            `decay_ssm_parameters` (default False: no weight decay on SSM
            parameters).
        steps_per_epoch: batches per epoch (sets the schedule's length);
            without it the learning rate is constant.
        epochs: total epochs (default `training["epochs"]`).
        **compile_kwargs: other `model.compile` arguments (`jit_compile`,
            `run_eagerly`, ...).
    """
    from keras_ssm.optimizers import SSMAdamW
    from keras_ssm.schedules import warmup_schedule

    lr = training["learning_rate"]
    epochs = epochs or training["epochs"]
    schedule = lr
    if steps_per_epoch:
        total = max(1, steps_per_epoch * epochs)
        warmup = training.get("warmup_steps") or round(
            training.get("warmup_epochs", 0) * steps_per_epoch
        )
        # A run shorter than the warm-up (a smoke test of a paper preset)
        # warms up over all but its last step.
        warmup = min(warmup, total - 1)
        schedule = warmup_schedule(
            lr,
            total,
            warmup,
            training.get("schedule", "cosine"),
            alpha=training.get("final_lr_fraction", 0.0),
        )
    optimizer = SSMAdamW(
        schedule,
        weight_decay=training["weight_decay"],
        ssm_learning_rate=training.get("ssm_learning_rate"),
        beta_2=training.get("beta_2", 0.999),
        clipnorm=training.get("clipnorm"),
        decay_ssm_parameters=training.get("decay_ssm_parameters", False),
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        **compile_kwargs,
    )
    return model
