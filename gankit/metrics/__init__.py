"""Evaluation: FID, KID, IS, precision/recall, density/coverage, the classifier view, mode
counting, memorisation, AFD and the toy-mixture metrics, measured with recorded protocols.

Everything listed in ``__all__`` is importable from here; the submodules load on first use
so that ``gankit --help`` stays fast.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FeatureStats": "stats", "read_npz": "stats", "check_comparable": "stats",
    "frechet_distance": "frechet",
    "kid": "mmd",
    "inception_score": "classifier", "classifier_quality_diversity": "classifier",
    "mode_counts": "classifier", "joint_labels": "classifier",
    "precision_recall": "prdc", "density_coverage": "prdc",
    "memorisation": "nearest",
    "anime_face_rate": "anime",
    "toy_metrics": "toy", "plot_toy": "toy",
    "tf_bilinear_resize": "resize",
    "ProtocolMismatch": "protocol", "check_same_protocol": "protocol",
    "StatsCache": "cache",
    "compute_metrics": "compute", "compare_scores": "compute", "Scores": "compute",
    "likelihood_scores": "compute",
    "MetricOptions": "compute", "batches_of": "compute", "HIGHER": "compute",
    "build_extractor": "extractors", "Extractor": "extractors",
    "InceptionExtractor": "extractors", "DigitExtractor": "extractors",
    "TorchScriptExtractor": "extractors", "IdentityExtractor": "extractors",
    "add_eval_arguments": "cli", "run_eval": "cli",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gankit.metrics' has no attribute '{name}'")
    module = importlib.import_module(f"gankit.metrics.{_EXPORTS[name]}")
    value = getattr(module, name)
    globals()[name] = value
    return value
