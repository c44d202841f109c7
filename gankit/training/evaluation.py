"""Metrics during training: on the EMA generator, every ``eval.every`` steps and at the end."""
from __future__ import annotations

import math

import torch

from gankit.training.checkpoint import atomic_save, make_checkpoint


def _fake_batches(model, n: int, seed: int, use_ema: bool, batch_size: int = 250):
    # Its own generator: evaluating must not move the training RNG (exact resume).
    g = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        yield model.generate(min(batch_size, n - start), generator=g, use_ema=use_ema,
                             batch_size=batch_size)


def _real_batches(source, n: int, batch_size: int = 250):
    for batch in source.iter_items(batch_size, max_items=n):
        yield batch["x"].float().cpu()


def evaluate_during_training(trainer) -> dict[str, float]:
    """Compute ``eval.metrics``; keep ``checkpoints/best.pt`` by ``eval.best``."""
    from gankit.metrics.compute import HIGHER, compute_metrics

    cfg = trainer.cfg
    n = cfg.eval.n_samples
    scores = compute_metrics(
        cfg.eval.metrics,
        _fake_batches(trainer.model, n, cfg.train.seed + 104_729, cfg.train.ema > 0),
        _real_batches(trainer.source, max(n, 0) or None),
        trainer.info, extractor=cfg.eval.extractor, out_dir=trainer.run_dir / "eval",
        real_n=n, device=trainer.device,
    )
    results = {k: float(v) for k, v in scores.items()}
    best = cfg.eval.best
    if best and best in results and math.isfinite(results[best]):
        value = results[best]
        sign = 1.0 if best in HIGHER else -1.0
        previous = getattr(trainer, "best_value", None)
        if previous is None or sign * value > sign * previous:
            trainer.best_value = value
            ckpt = make_checkpoint(trainer.model, trainer.source, trainer.step, trainer.phase,
                                   {"info": vars(trainer.info).copy(), "best": {best: value}})
            atomic_save(ckpt, trainer.run_dir / "checkpoints" / "best.pt")
    return results
