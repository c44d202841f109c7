"""Load a finished (or running) run for sampling, evaluation and translation."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from gankit.checkpoint_format import checkpoint_file
from gankit.config import RunConfig, config_from_dict
from gankit.data.info import DataInfo
from gankit.errors import CheckpointError, ConfigError
from gankit.models import MODELS
from gankit.models.base import GenerativeModel
from gankit.runtime import tune_allocator
from gankit.training.checkpoint import load_checkpoint


@dataclass
class LoadedRun:
    model: GenerativeModel
    cfg: RunConfig
    info: DataInfo
    run_dir: Path
    step: int

    def generate(self, n: int, seed: int = 0, use_ema: bool = True, batch_size: int = 500) -> torch.Tensor:
        """``n`` samples in data space; the same seed always gives the same samples."""
        g = torch.Generator().manual_seed(seed)
        return self.model.generate(n, generator=g, use_ema=use_ema, batch_size=batch_size)

    def real_batches(self, batch_size: int = 500, max_items: int | None = None) -> Iterator[torch.Tensor]:
        """The training data's ``x``: all of it, or a seeded (stratified) random ``max_items``
        (see :meth:`reference`); loads the data."""
        for batch in self._source().iter_items(batch_size, max_items):
            yield batch["x"]

    def generator(self, live: bool = False):
        """The run's generator as a :class:`gankit.use.generator.GeneratorHandle` (its EMA
        copy unless ``live``); one-line Unsupported error for a model without one."""
        from gankit.use.generator import GeneratorHandle

        return GeneratorHandle.from_model(self.model, use_ema=not live)

    def _source(self):
        from gankit.data import build_source

        if getattr(self, "_cached_source", None) is None:
            self._cached_source = build_source(self.cfg.data, self.cfg.train.seed, torch.device("cpu"))
        return self._cached_source

    def real_pair(self, n_a: int, n_b: int | None,
                  batch_size: int = 500) -> tuple[Iterator[torch.Tensor], Iterator[torch.Tensor], int, int]:
        """Two disjoint real sets for a real-vs-real reference score: ``b`` is the reference
        :meth:`real_batches` yields for ``n_b``, ``a`` up to ``n_a`` other items. Returns
        ``(a batches, b batches, len(a), len(b))``; ``a`` is empty when ``b`` takes all."""
        from gankit.data.source import disjoint_from, reference_indices

        source = self._source()
        n = source.info.size
        labels = source._labels()
        b = reference_indices(n, n_b or n, labels)
        a = disjoint_from(n, b, min(n_a, n - len(b)), labels) if len(b) < n else b[:0]
        xs = lambda idx: (batch["x"] for batch in source.iter_subset(batch_size, idx))
        return xs(a), xs(b), len(a), len(b)

    def reference(self, max_items: int | None = None) -> dict[str, str]:
        """Which real items :meth:`real_batches` yields: the protocol fields ``subset`` and
        ``data_id`` that :func:`gankit.metrics.compute.compute_metrics` takes as ``reference``."""
        from gankit.data import data_identity

        source = self._source()
        return {"subset": source.reference_subset(max_items),
                "data_id": data_identity(self.cfg.data, self.cfg.train.seed, source.info)}


def load_run(run_dir: str | Path, device: str | torch.device = "cpu", which: str = "last") -> LoadedRun:
    """Rebuild the model from the config saved in the checkpoint and load its weights."""
    tune_allocator()  # API users sampling or evaluating without the CLI: see gankit/runtime.py
    if Path(run_dir).suffix == ".safetensors":  # an exported generator (gankit export)
        from gankit.export import load_exported

        return load_exported(run_dir, device)
    path = checkpoint_file(Path(run_dir), which)
    ckpt = load_checkpoint(path)
    try:
        cfg = config_from_dict(ckpt["config"])
    except ConfigError as e:
        raise CheckpointError(f"'{path}' holds a config this gankit cannot read: {e}") from None
    info_d = dict(ckpt["info"])
    info_d["shape"] = tuple(info_d["shape"])
    info = DataInfo(**info_d)
    model = MODELS.get(cfg.model.kind)(cfg, info)
    if cfg.train.ema > 0:
        model.setup_ema()
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"'{path}' does not match its own config ({str(e).splitlines()[0][:120]})") from None
    model.to(device).eval()
    run = Path(run_dir) if Path(run_dir).is_dir() else path.parent.parent
    return LoadedRun(model, cfg, info, run, int(ckpt["step"]))


def load_generator(run_dir: str | Path, live: bool = False, device: str | torch.device = "cpu",
                   which: str = "last"):
    """A run's generator (EMA unless ``live``) as a :class:`gankit.use.generator.GeneratorHandle`."""
    return load_run(run_dir, device, which).generator(live)
