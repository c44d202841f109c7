"""The package front: ``gankit.load_generator`` / ``gankit.load_run`` resolve lazily to
``gankit.api`` without ``import gankit`` importing the application layer."""
from __future__ import annotations

import subprocess
import sys

import pytest

import gankit


def test_front_names_are_the_api_functions():
    import gankit.api

    assert gankit.load_generator is gankit.api.load_generator
    assert gankit.load_run is gankit.api.load_run
    assert {"load_generator", "load_run", "__version__"} <= set(dir(gankit))


def test_import_gankit_does_not_import_the_app_layer():
    code = ("import sys, gankit; print(any(m.startswith(('gankit.api', 'gankit.cli', "
            "'gankit.models', 'torch')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gankit.nope  # noqa: B018
