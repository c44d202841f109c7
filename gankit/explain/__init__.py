"""``gankit explain``: the lecture's claims, computed by the toolkit's own pieces.

Every module registers one :class:`~gankit.explain.base.Topic` in
:data:`~gankit.explain.base.TOPICS`; importing this package registers them all.
"""
from gankit.explain import (clip_penalty, collapse, evaluation, fdiv_modes,  # noqa: F401
                            js_wasserstein, sampling, saturation)
from gankit.explain.base import SIZES, TOPICS, Topic, explanation, run_topic

__all__ = ["SIZES", "TOPICS", "Topic", "explanation", "run_topic"]
