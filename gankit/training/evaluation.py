"""Metrics during training: on the EMA generator, every ``eval.every`` steps and at the end.

Under torchrun the generation is shared out: every rank draws the same inputs for each batch
of ``batch_size`` samples, decodes its own slice, and the slices are all-gathered, so rank 0
receives exactly the samples one process would generate. Rank 0 alone extracts features and
computes the metrics (the feature extractor sees whole batches, as in a single process); the
other ranks take part in the gathers and return ``{}``.
"""
from __future__ import annotations

import math
from typing import Iterator

import torch

from gankit import distributed
from gankit.training.checkpoint import make_checkpoint, save_checkpoint


def _decode_shared(model, inputs: dict[str, torch.Tensor], n: int, use_ema: bool) -> torch.Tensor:
    """Decode ``n`` items split over ranks; every rank gets all ``n`` outputs in order."""
    world, rank = distributed.world_size(), distributed.rank()
    per = -(-n // world)
    # the last rank's slice is padded with repeats of the last item: all_gather needs equal shapes
    idx = torch.arange(rank * per, (rank + 1) * per).clamp_(max=n - 1)
    part = {k: v.index_select(0, idx.to(v.device)) for k, v in inputs.items()}
    return distributed.all_gather_cat(model.decode(part, use_ema=use_ema))[:n]


def _fake_batches(model, n: int, seed: int, use_ema: bool,
                  batch_size: int = 250) -> Iterator[torch.Tensor]:
    # Its own generator: evaluating must not move the training RNG (exact resume).
    g = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        inputs = model.sample_inputs(b, generator=g)
        with torch.no_grad():
            if distributed.is_distributed():
                x = _decode_shared(model, inputs, b, use_ema)
            else:
                x = model.decode(inputs, use_ema=use_ema)
        yield x.float().cpu()


def _real_batches(source, n: int, batch_size: int = 250):
    for batch in source.iter_items(batch_size, max_items=n):
        yield batch["x"].float().cpu()


def evaluate_during_training(trainer) -> dict[str, float]:
    """Compute ``eval.metrics`` (a :class:`~gankit.metrics.compute.Scores` of floats, with
    protocols); keep ``checkpoints/best.pt`` by ``eval.best``."""
    from gankit.metrics.compute import HIGHER, Scores, compute_metrics

    cfg = trainer.cfg
    n = cfg.eval.n_samples
    fake = _fake_batches(trainer.model, n, cfg.train.seed + 104_729, cfg.train.ema > 0)
    if not trainer.main:
        for _ in fake:  # the gathers need every rank; the metrics need only rank 0
            pass
        return {}
    from gankit.data import data_identity

    real_n = max(n, 0) or None
    reference = {"subset": trainer.source.reference_subset(real_n),
                 "data_id": data_identity(cfg.data, cfg.train.seed, trainer.info)}
    from gankit.metrics.anime import with_fid

    scores = compute_metrics(
        with_fid(cfg.eval.metrics),  # AFD never without FID
        fake,
        _real_batches(trainer.source, real_n),
        trainer.info, extractor=cfg.eval.extractor, out_dir=trainer.run_dir / "eval",
        real_n=n, device=trainer.device, reference=reference,
    )
    results = Scores()
    for key, value in scores.items():
        results.add({key: float(value)}, scores.protocol[key])
    best = cfg.eval.best
    if best and best in results and math.isfinite(results[best]):
        value = results[best]
        sign = 1.0 if best in HIGHER else -1.0
        previous = trainer.best_value
        if previous is None or sign * value > sign * previous:
            trainer.best_value = value
            ckpt = make_checkpoint(trainer.model, trainer.source, trainer.step, trainer.phase,
                                   {**trainer.checkpoint_extra(), "best": {best: value}})
            save_checkpoint(ckpt, trainer.run_dir / "checkpoints" / "best.pt", trainer.run_dir,
                            trainer.saved_step)
    return results
