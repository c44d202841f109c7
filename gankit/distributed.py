"""torchrun support: process group set-up, gradient averaging, rank-0-only side effects.

Gradients are averaged with one flattened all-reduce per update, as StyleGAN2-ADA does,
rather than by wrapping nets in DistributedDataParallel: a GAN runs several forwards of D
(real, fake, penalty) per backward and toggles ``requires_grad`` between phases, which
DDP's reducer does not allow. Every rank draws the global noise and data batch and keeps its
slice, so N ranks with ``batch_size / N`` each compute what one process computes with
``batch_size`` (up to the order of floating-point sums).

The process group holds gloo for CPU tensors and, where CUDA is there, NCCL for CUDA
tensors: small host-side agreements (stop requests, the run folder) travel through gloo
without a device round trip, gradients and features through NCCL.
"""
from __future__ import annotations

import os
from typing import Iterable

import torch
import torch.distributed as dist
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn.modules.batchnorm import _BatchNorm


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def backend() -> str:
    """gloo alone on CPU-only machines; gloo for CPU tensors and NCCL for CUDA ones otherwise."""
    if torch.cuda.is_available() and dist.is_nccl_available():
        return "cpu:gloo,cuda:nccl"
    return "gloo"


_created_here = False  # whether init_from_env made the group (then release() destroys it)


def init_from_env() -> None:
    """Join the process group torchrun describes in the environment (no-op when there is none
    to join, or when the caller made its own group)."""
    global _created_here
    if not launched_by_torchrun() or dist.is_initialized():
        return
    dist.init_process_group(backend=backend())
    _created_here = True


def release() -> None:
    """Destroy the process group if :func:`init_from_env` made it; leave a caller's own alone."""
    global _created_here
    if _created_here and dist.is_initialized():
        dist.destroy_process_group()
    _created_here = False


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def all_reduce_grads(params: Iterable[torch.nn.Parameter]) -> None:
    """Average the gradients of ``params`` over ranks in one flattened buffer."""
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    parts = flat.split([g.numel() for g in grads])
    torch._foreach_copy_(grads, [part.view(g.shape) for part, g in zip(parts, grads)])


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """The mean of ``t`` over ranks (``t`` itself in a single process)."""
    if not is_distributed():
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t / dist.get_world_size()


def all_agree(flag: bool) -> bool:
    """True on every rank when ``flag`` is True on any rank (a CPU all-reduce, no device sync)."""
    if not is_distributed():
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def all_gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate equally shaped tensors of all ranks along dim 0, in rank order."""
    if not is_distributed():
        return t
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts)


def broadcast_int(value: int) -> int:
    """Rank 0's ``value`` on every rank."""
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.int64)
    dist.broadcast(t, src=0)
    return int(t.item())


def broadcast_module(module: torch.nn.Module) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    if not is_distributed():
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# ---- synchronised batch norm ------------------------------------------------------------------
class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) with its adjoint: each rank's gradient of the sum is the sum of all
    ranks' incoming gradients, so a loss that depends on global statistics back-propagates
    into every rank's share of them."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    @once_differentiable  # a penalty's double backward through it would lose the other ranks
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlooSyncBatchNorm(_BatchNorm):
    """Batch norm whose training statistics span all ranks, for CPU tensors.

    ``torch.nn.SyncBatchNorm`` runs on GPUs only; this is the same computation with two
    differentiable all-reduces (mean, then the centred second moment, which is steadier than
    E[x^2] - E[x]^2), so N ranks normalise like one process with the whole batch (up to
    rounding)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = x.numel() // x.shape[1] * dist.get_world_size()
        xf = x.float()  # statistics in fp32 under bf16 autocast, as nn.BatchNorm keeps them
        mean = _SumOverRanks.apply(xf.sum(dims)) / count
        centred = xf - mean.view(shape)
        var = _SumOverRanks.apply(centred.square().sum(dims)) / count
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), count)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
        self.num_batches_tracked.add_(1)
        # momentum None means a cumulative average, as in nn.BatchNorm
        m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        unbiased = var * (count / max(count - 1, 1))
        self.running_mean.lerp_(mean, m)
        self.running_var.lerp_(unbiased, m)


def _to_gloo_sync(module: nn.Module) -> nn.Module:
    if isinstance(module, _BatchNorm) and not isinstance(module, GlooSyncBatchNorm):
        sync = GlooSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                 module.track_running_stats)
        state = module.state_dict()
        sync.load_state_dict(state)
        sync.train(module.training)
        return sync.to(next(iter(state.values())).device) if state else sync
    for name, child in module.named_children():
        setattr(module, name, _to_gloo_sync(child))
    return module


def convert_sync_batchnorm(module: nn.Module, device_type: str) -> nn.Module:
    """Replace every batch norm in ``module`` by one whose statistics span all ranks."""
    if device_type == "cpu":
        return _to_gloo_sync(module)
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)


class StopVote:
    """Agree on a stop request across ranks without stalling a step.

    Each step starts an asynchronous all-reduce of this rank's request and reads the one started
    a step earlier, so every rank stops at the same step boundary, one step after the request,
    while the collective overlaps a step of compute."""

    def __init__(self) -> None:
        self._flag: torch.Tensor | None = None
        self._work = None

    def poll(self, requested: bool) -> bool:
        """True (on every rank at the same call) when any rank had requested a stop a call ago."""
        agreed = self._finish()
        if not agreed:
            self._flag = torch.tensor([1.0 if requested else 0.0])
            self._work = dist.all_reduce(self._flag, op=dist.ReduceOp.MAX, async_op=True)
        return agreed

    def _finish(self) -> bool:
        if self._work is None:
            return False
        self._work.wait()
        self._work = None
        return bool(self._flag.item() > 0)

    def close(self) -> None:
        """Complete the outstanding vote (before the process group goes away)."""
        self._finish()
