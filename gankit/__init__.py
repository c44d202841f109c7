"""gankit: train, evaluate, compare and use GANs from one CLI.

The package's own ``__init__`` sits in the lowest layer (ARCHITECTURE.md) and imports nothing
of gankit's. The library front a user reaches for first, ``gankit.load_generator`` and
``gankit.load_run``, is resolved lazily on first access (PEP 562), so ``import gankit`` stays
light and no lower module ever depends on the application layer through it.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> the module that defines it (gankit.api, the app layer's library front)
FRONT = {"load_generator": "gankit.api", "load_run": "gankit.api"}


def __getattr__(name: str) -> Any:
    if name in FRONT:
        return getattr(importlib.import_module(FRONT[name]), name)
    raise AttributeError(f"module 'gankit' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *FRONT])
