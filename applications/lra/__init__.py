"""Long Range Arena classification with keras-ssm backbones.

Build a classifier, pick a preset, load or generate a task's data:

>>> from applications.lra import build_classifier, get_preset
>>> preset = get_preset("listops", "etsmlp_gate", "cpu")
>>> model = build_classifier("listops", "etsmlp_gate", sequence_length=64,
...                          **preset["model"])

or train from the command line:

    python -m applications.lra --task listops --model etsmlp_gate --preset cpu
"""

# Attributes load lazily: `python -m applications.lra` imports this package
# before its `__main__` can select the Keras backend, so importing Keras here
# would fix the backend too early.
_EXPORTS = {
    "BACKBONES": "applications.lra.models",
    "build_classifier": "applications.lra.models",
    "compile_classifier": "applications.lra.models",
    "make_block": "applications.lra.models",
    "get_preset": "applications.lra.presets",
    "TASKS": "applications.lra.tasks",
    "get_task": "applications.lra.tasks",
    "load_task_data": "applications.lra.tasks",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'applications.lra' has no {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
