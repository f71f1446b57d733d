"""The `>>>` examples of every keras_ssm module run as doctests."""

import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pytest

import keras_ssm


def _module_names():
    names = [keras_ssm.__name__]
    for info in pkgutil.walk_packages(
        keras_ssm.__path__, prefix=keras_ssm.__name__ + "."
    ):
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _module_names())
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    globs = {"keras": keras, "keras_ssm": keras_ssm, "np": np}
    examples = 0
    for test in finder.find(module, name, extraglobs=globs):
        # Only docstrings written in this module, not imported objects'.
        examples += len(test.examples)
        keras.utils.set_random_seed(0)
        runner.run(test, clear_globs=True)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {examples} failed"
