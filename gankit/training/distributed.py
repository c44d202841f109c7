"""The old name of :mod:`gankit.distributed`, which moved below the models (they slice noise
per rank and average gradients over ranks). Importing this name gives that same module, so
``distributed.x`` and monkeypatches of it mean one thing wherever they are written."""
import sys

from gankit import distributed as _distributed

sys.modules[__name__] = _distributed
