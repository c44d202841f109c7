"""Batch sources with a resumable data order.

Every source yields ``dict[str, Tensor]`` batches already on the training device, and its
position in the data order is part of the checkpoint: epoch ``e`` is visited in the order
``randperm(N)`` seeded by ``(seed, e)``, so ``(epoch, position)`` is the whole state.
Under torchrun every rank draws the same global batch and keeps its own slice of it, so
N ranks with ``batch_size / N`` each see exactly the batch one process would.
"""
from __future__ import annotations

import sys
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from gankit.data.info import DataInfo
from gankit.errors import ConfigError, DataError


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


class _Order:
    """Which global batch comes next: (epoch, position) over per-epoch permutations.

    The permutation is drawn on the CPU (the same order on every device) and moved to
    ``device`` once per epoch, so taking a batch's indices copies nothing to the device.
    """

    def __init__(self, n: int, global_batch: int, seed: int, device: torch.device | None = None):
        if n < global_batch:
            raise DataError(
                f"the data set has {n} items, fewer than one batch of {global_batch}; "
                "lower data.batch_size or add data"
            )
        self.n, self.global_batch, self.seed = n, global_batch, seed
        self.device = device or torch.device("cpu")
        self.epoch, self.pos = 0, 0
        self._perm = self._draw()

    def _draw(self) -> torch.Tensor:
        return epoch_order(self.n, self.seed, self.epoch).to(self.device)

    def next_indices(self) -> torch.Tensor:
        if self.pos + self.global_batch > self.n:  # drop the ragged tail, start a new epoch
            self.epoch, self.pos = self.epoch + 1, 0
            self._perm = self._draw()
        idx = self._perm[self.pos:self.pos + self.global_batch]
        self.pos += self.global_batch
        return idx

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._perm = self._draw()


# The reference subset ignores train.seed: runs with different seeds are measured against
# the same real items (and share cached statistics).
REFERENCE_SEED = 0


def reference_indices(n_total: int, n: int, labels: torch.Tensor | None = None,
                      seed: int = REFERENCE_SEED) -> torch.Tensor:
    """Sorted indices of a seeded random ``n`` of ``n_total`` items, for a metric's reference.

    The first ``n`` in stored order would be biased (MNIST-5k is stored sorted by class).
    With ``labels`` the draw is stratified: each class gets ``n * share`` items, the
    remainders going to the largest fractional shares (lowest class first on ties)."""
    g = torch.Generator().manual_seed(seed)
    if n >= n_total:
        return torch.arange(n_total)
    if labels is None:
        return torch.randperm(n_total, generator=g)[:n].sort().values
    labels = labels.reshape(-1).cpu()
    classes, counts = labels.unique(return_counts=True)
    exact = counts.double() * n / n_total
    quota = exact.floor().long()
    extra = sorted(range(len(classes)), key=lambda i: (-(exact[i] - quota[i]).item(), i))
    for i in extra[: n - int(quota.sum())]:
        quota[i] += 1
    picks = [torch.nonzero(labels == c).reshape(-1)[torch.randperm(int(k), generator=g)[:int(q)]]
             for c, k, q in zip(classes.tolist(), counts.tolist(), quota.tolist())]
    return torch.cat(picks).sort().values


def disjoint_from(n_total: int, taken: torch.Tensor, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Sorted indices of a seeded random ``n`` of the items not in ``taken`` (stratified by
    ``labels`` when given): a second real set for a real-vs-real reference score."""
    free = torch.ones(n_total, dtype=torch.bool)
    free[taken] = False
    rest = torch.nonzero(free).reshape(-1)
    pick = reference_indices(len(rest), n, None if labels is None else labels.reshape(-1)[rest],
                             seed=REFERENCE_SEED + 1)
    return rest[pick]


def describe_reference(n_total: int, n: int | None, stratified: bool) -> str:
    """How :func:`reference_indices` chose the real items, for protocols and cache keys."""
    if not n or n >= n_total:
        return f"all {n_total}"
    how = ", stratified by class" if stratified else ""
    return f"random {n} of {n_total}{how}, seed {REFERENCE_SEED}"


def _rank_slice(idx: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    per = idx.numel() // world
    return idx[rank * per:(rank + 1) * per]


def per_rank_batch(batch_size: int, world: int) -> int:
    if batch_size % world:
        raise ConfigError(
            f"data.batch_size={batch_size} must be divisible by the number of processes ({world})"
        )
    return batch_size // world


class ResidentSource:
    """A small data set kept on the device as tensors; a batch is one indexing op."""

    def __init__(self, tensors: dict[str, torch.Tensor], info: DataInfo, batch_size: int,
                 seed: int, device: torch.device, rank: int = 0, world: int = 1):
        self.info = info
        self.tensors = {k: v.to(device) for k, v in tensors.items()}
        n = next(iter(tensors.values())).shape[0]
        self.batch_size = per_rank_batch(batch_size, world)
        self.order = _Order(n, batch_size, seed, torch.device(device))
        self.rank, self.world, self.device = rank, world, device

    def next_batch(self) -> dict[str, torch.Tensor]:
        idx = _rank_slice(self.order.next_indices(), self.rank, self.world)
        return {k: v.index_select(0, idx) for k, v in self.tensors.items()}

    def state_dict(self) -> dict[str, Any]:
        return self.order.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order.load_state_dict(state)

    def _labels(self) -> torch.Tensor | None:
        y = self.tensors.get("y")
        return y if y is not None and y.unique().numel() > 1 else None

    def reference_subset(self, max_items: int | None) -> str:
        """What :meth:`iter_items` with ``max_items`` yields, in words."""
        n = next(iter(self.tensors.values())).shape[0]
        return describe_reference(n, max_items, self._labels() is not None)

    def iter_items(self, batch_size: int, max_items: int | None = None) -> Iterator[dict[str, torch.Tensor]]:
        """All items, or a seeded (stratified) random ``max_items`` of them, in stored order,
        for metrics (does not move the training order)."""
        n = next(iter(self.tensors.values())).shape[0]
        yield from self.iter_subset(batch_size, reference_indices(n, max_items or n, self._labels()))

    def iter_subset(self, batch_size: int, idx: torch.Tensor) -> Iterator[dict[str, torch.Tensor]]:
        """The items at ``idx``, in that order."""
        for s in range(0, len(idx), batch_size):
            part = idx[s:s + batch_size]
            yield {k: v.index_select(0, part.to(v.device)) for k, v in self.tensors.items()}


class _OrderSampler(Sampler[list[int]]):
    """Batch sampler over a _Order copy, starting where the trainer's order stands."""

    def __init__(self, order: _Order, rank: int, world: int):
        self.order, self.rank, self.world = order, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            yield _rank_slice(self.order.next_indices(), self.rank, self.world).tolist()


class StreamingSource:
    """A large folder streamed through a DataLoader with workers, in the same resumable order."""

    def __init__(self, dataset: Dataset, info: DataInfo, batch_size: int, seed: int,
                 device: torch.device, workers: int = 2, rank: int = 0, world: int = 1,
                 on_bad: str = "error"):
        self.info, self.dataset, self.device = info, dataset, device
        self.on_bad, self.bad_files = on_bad, set()  # indices of files that failed to decode
        self.batch_size = per_rank_batch(batch_size, world)
        self.order = _Order(len(dataset), batch_size, seed)  # type: ignore[arg-type]
        self.rank, self.world, self.workers = rank, world, workers
        self._consumed = self.order.state_dict()
        self._it: Iterator | None = None

    def _start(self) -> None:
        shadow = _Order(self.order.n, self.order.global_batch, self.order.seed)
        shadow.load_state_dict(self._consumed)
        loader = DataLoader(self.dataset, batch_sampler=_OrderSampler(shadow, self.rank, self.world),
                            num_workers=self.workers, pin_memory=self.device.type == "cuda",
                            persistent_workers=False, prefetch_factor=4 if self.workers else None)
        self._it = iter(loader)

    def next_batch(self) -> dict[str, torch.Tensor]:
        if self._it is None:
            self._start()
        batch = next(self._it)  # type: ignore[arg-type]
        if "bad" in batch:
            self._check_bad(batch.pop("bad"))
        self.order.next_indices()  # the trainer's own copy of the position
        self._consumed = self.order.state_dict()
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def _check_bad(self, bad: torch.Tensor) -> None:
        """Apply data.on_bad to the files this batch could not read (their places were
        filled by the next readable items, deterministically)."""
        new = sorted(set(bad[bad >= 0].tolist()) - self.bad_files)
        if not new:
            return
        from gankit.data.folders import bad_file_error

        paths = [self.dataset.paths[i] for i in new]  # type: ignore[attr-defined]
        if self.on_bad == "error":  # a packed data set names its own members
            raise getattr(self.dataset, "bad_file_error", bad_file_error)(paths[0])
        if not self.bad_files:
            print(f"data: skipping unreadable image '{paths[0]}' (data.on_bad=skip); "
                  "the count of skipped files is logged as data/skipped", file=sys.stderr)
        self.bad_files.update(new)

    def log_values(self) -> dict[str, float]:
        """What the trainer adds to each log record: the files skipped so far."""
        return {"data/skipped": float(len(self.bad_files))} if self.on_bad == "skip" else {}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = dict(self._consumed)
        if self.bad_files:  # so that a resumed run keeps counting from here
            state["bad_files"] = sorted(self.bad_files)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order.load_state_dict(state)
        self._consumed = self.order.state_dict()
        self.bad_files = set(state.get("bad_files", ()))
        self._it = None

    def _labels(self) -> torch.Tensor | None:
        labels = getattr(self.dataset, "labels", None)
        return torch.tensor(labels) if labels is not None and len(set(labels)) > 1 else None

    def reference_subset(self, max_items: int | None) -> str:
        """What :meth:`iter_items` with ``max_items`` yields, in words."""
        return describe_reference(len(self.dataset), max_items, self._labels() is not None)  # type: ignore[arg-type]

    def iter_items(self, batch_size: int, max_items: int | None = None) -> Iterator[dict[str, torch.Tensor]]:
        """As :meth:`ResidentSource.iter_items`, read through the DataLoader's workers."""
        n = len(self.dataset)  # type: ignore[arg-type]
        yield from self.iter_subset(batch_size, reference_indices(n, max_items or n, self._labels()))

    def iter_subset(self, batch_size: int, idx: torch.Tensor) -> Iterator[dict[str, torch.Tensor]]:
        """The items at ``idx``, in that order."""
        subset = torch.utils.data.Subset(self.dataset, idx.tolist())
        for batch in DataLoader(subset, batch_size=batch_size, num_workers=self.workers):
            batch.pop("bad", None)  # metrics read what decodes; data.on_bad governs training
            yield batch
