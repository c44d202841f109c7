"""``gankit explain``: the lecture's claims, computed by the toolkit's own pieces.

Every module registers one :class:`~gankit.explain.base.Topic` in
:data:`~gankit.explain.base.TOPICS`; importing this package registers them all.
"""
from gankit.explain import clip_penalty, collapse, fdiv_modes, js_wasserstein, saturation  # noqa: F401  (registration side effects)
from gankit.explain.base import SIZES, TOPICS, Topic, explanation, run_topic

__all__ = ["SIZES", "TOPICS", "Topic", "explanation", "run_topic"]
