"""Model and task continuity ("Continuity Laws for Sequential Models").

A model is continuous in time when its outputs converge as the same
continuous signal is sampled ever more finely (step tau, tau/2, tau/4, ...)
and the model's dt follows the step (Yu, Lyu, Erichson). A task is
continuous when its sequences change little from one step to the next.
"""

import numbers

import numpy as np
from keras import ops

from keras_ssm.analysis.subsampling import dt_scaled
from keras_ssm.analysis.subsampling import dt_scaled_layers


def _check_refinements(refinements):
    refinements = list(refinements)
    if not refinements or any(
        isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1
        for r in refinements
    ):
        raise ValueError(
            "`refinements` must be a non-empty sequence of integers >= 1, "
            f"got {refinements!r}."
        )
    refinements = sorted(set(int(r) for r in refinements))
    coarsest, finest = refinements[0], refinements[-1]
    for r in refinements:
        if r % coarsest or finest % r:
            raise ValueError(
                "Each of `refinements` must be a multiple of the smallest and "
                f"divide the largest (e.g. (1, 2, 4, 8)); got {refinements}."
            )
    return refinements


def _relative_errors(output, reference):
    diff = output - reference
    scale_inf = max(np.max(np.abs(reference)), np.finfo(np.float64).tiny)
    scale_rms = max(np.sqrt(np.mean(reference**2)), np.finfo(np.float64).tiny)
    rel_linf = np.max(np.abs(diff)) / scale_inf
    rel_rmse = np.sqrt(np.mean(diff**2)) / scale_rms
    return rel_linf, rel_rmse


def model_continuity(
    layer_or_model, inputs, refinements=(1, 2, 4, 8), amplitudes=(1.0,)
):
    """Convergence of a model's outputs under temporal refinement.

    `inputs` holds a continuous signal sampled at the finest step tau / R,
    R = max(refinements). Refinement r feeds `amplitude * inputs[:, ::R/r]`
    (the same signal at step tau / r) with every `dt_scale` in the model
    multiplied by 1 / r, so that all refinements describe the same
    continuous-time system. Outputs are compared on the coarsest grid
    against the finest refinement:

        rel_linf = max |y_r - y_R| / max |y_R|,
        rel_rmse = rms(y_r - y_R) / rms(y_R).

    A continuous model has errors that shrink as r grows. A linear model
    (S4D) has the same relative errors at every amplitude; a selective SSM,
    whose step depends on the input, does not.

    Args:
        layer_or_model: a layer or model with at least one layer that has a
            `dt_scale` (S4D, SelectiveSSM, ...); called eagerly.
        inputs: float array `(batch, length, channels)` sampled at the
            finest step; `length` must be a multiple of max(refinements).
        refinements: increasing integers, each a multiple of the smallest
            and a divisor of the largest, e.g. (1, 2, 4, 8).
        amplitudes: factors applied to `inputs`.

    Returns:
        A dict with "refinements" and "amplitudes" (lists), and "rel_linf"
        and "rel_rmse", float64 arrays of shape
        (len(amplitudes), len(refinements)); the last column (the finest
        refinement against itself) is 0.

    Example:

    >>> t = np.linspace(0, 4, 256, endpoint=False)
    >>> x = np.sin(2 * np.pi * t)[None, :, None] * np.ones((1, 1, 4))
    >>> result = model_continuity(
    ...     keras_ssm.layers.S4D(d_state=16), x, amplitudes=(0.1, 1.0, 10.0)
    ... )
    >>> result["rel_rmse"].shape  # rows: amplitudes, columns: refinements
    (3, 4)
    """
    refinements = _check_refinements(refinements)
    amplitudes = list(amplitudes)
    if not amplitudes or not all(
        isinstance(a, numbers.Real) and a != 0 for a in amplitudes
    ):
        raise ValueError(
            "`amplitudes` must be a non-empty sequence of non-zero numbers, "
            f"got {amplitudes!r}."
        )
    inputs = np.asarray(inputs, dtype=np.float32)
    coarsest, finest = refinements[0], refinements[-1]
    if inputs.ndim != 3 or inputs.shape[1] % finest:
        raise ValueError(
            "`inputs` must have shape (batch, length, channels) with length a "
            f"multiple of max(refinements)={finest}; got shape "
            f"{inputs.shape}."
        )
    if not dt_scaled_layers(layer_or_model):
        raise ValueError(
            f"`layer_or_model` ({layer_or_model.name}) has no layer with a "
            "`dt_scale` (S4D, SelectiveSSM, ...)."
        )
    rel_linf = np.zeros((len(amplitudes), len(refinements)))
    rel_rmse = np.zeros((len(amplitudes), len(refinements)))
    for i, amplitude in enumerate(amplitudes):
        outputs = []
        for r in refinements:
            x = amplitude * inputs[:, :: finest // r]
            with dt_scaled(layer_or_model, 1.0 / r):
                y = layer_or_model(x)
            y = np.asarray(ops.convert_to_numpy(y), dtype=np.float64)
            if y.ndim >= 2 and y.shape[1] == x.shape[1]:
                y = y[:, :: r // coarsest]  # back onto the coarsest grid
            outputs.append(y)
        for j, y in enumerate(outputs):
            rel_linf[i, j], rel_rmse[i, j] = _relative_errors(y, outputs[-1])
    return {
        "refinements": refinements,
        "amplitudes": [float(a) for a in amplitudes],
        "rel_linf": rel_linf,
        "rel_rmse": rel_rmse,
    }


def _as_sequences(sequences):
    if isinstance(sequences, np.ndarray) and sequences.dtype != object:
        if sequences.ndim == 2:
            sequences = sequences[..., None]
        if sequences.ndim != 3:
            raise ValueError(
                "`sequences` must have shape (num_sequences, length) or "
                "(num_sequences, length, channels), or be a list of "
                f"(length,) / (length, channels) arrays; got shape "
                f"{sequences.shape}."
            )
        return [np.asarray(s, dtype=np.float64) for s in sequences]
    result = []
    for s in sequences:
        s = np.asarray(ops.convert_to_numpy(s), dtype=np.float64)
        if s.ndim == 1:
            s = s[:, None]
        if s.ndim != 2:
            raise ValueError(
                "Each sequence must have shape (length,) or (length, "
                f"channels); got shape {s.shape}."
            )
        result.append(s)
    if not result or len({s.shape[1] for s in result}) != 1:
        raise ValueError(
            "`sequences` must hold at least one sequence, all with the same "
            "number of channels."
        )
    return result


def task_continuity(sequences):
    """How continuous a data set is: 1 - L_Lip(standardised data) / 2.

    Each channel is standardised with its mean and standard deviation over
    all steps of all sequences (z = (x - mean) / std); then

        continuity = 1 - (1/2) mean over all sequences, channels and steps
                     of (z[t+1] - z[t])^2.

    For stationary data this is the lag-1 autocorrelation: close to 1 for
    smooth time series, about 0 for sequences of independent tokens, and
    negative for signals that flip sign at every step. It is deterministic
    and invariant to shifting and rescaling each channel. Channels that are
    constant over the whole data set are ignored.

    Args:
        sequences: array `(num_sequences, length)` or `(num_sequences,
            length, channels)`, or a list of `(length,)` / `(length,
            channels)` arrays of varying length (each >= 2).

    Returns:
        A Python float, at most 1.

    Example:

    >>> t = np.linspace(0, 1, 500)
    >>> round(task_continuity(np.sin(2 * np.pi * 3 * t)[None]), 2)
    1.0
    >>> tokens = np.random.default_rng(0).integers(0, 1000, (8, 500))
    >>> abs(task_continuity(tokens)) < 0.05  # about 0
    True
    """
    sequences = _as_sequences(sequences)
    if any(s.shape[0] < 2 for s in sequences):
        raise ValueError("Every sequence needs at least 2 steps.")
    stacked = np.concatenate(sequences, axis=0)
    if not np.all(np.isfinite(stacked)):
        raise ValueError("`sequences` contains NaN or infinite values.")
    mean = stacked.mean(axis=0)
    std = stacked.std(axis=0)
    varying = std > 1e-12 * np.maximum(1.0, np.abs(mean))
    if not np.any(varying):
        raise ValueError(
            "task_continuity is undefined for constant data: every channel "
            "has zero variance."
        )
    total, count = 0.0, 0
    for s in sequences:
        z = (s[:, varying] - mean[varying]) / std[varying]
        diff = np.diff(z, axis=0)
        total += float(np.sum(diff**2))
        count += diff.size
    return 1.0 - 0.5 * total / count
