"""The version lives in one place and the license text ships."""

import importlib.metadata
import os

import pytest

import keras_ssm

# The same under every backend (package metadata).
pytestmark = pytest.mark.backend_independent

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)


def test_version_is_read_from_the_package():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        config = tomllib.load(f)
    assert "version" not in config["project"]
    assert "version" in config["project"]["dynamic"]
    dynamic = config["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "keras_ssm.__version__"}
    assert importlib.metadata.version("keras-ssm") == keras_ssm.__version__


def test_license_is_the_apache_2_text():
    with open(os.path.join(ROOT, "LICENSE")) as f:
        text = f.read()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
