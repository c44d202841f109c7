"""Regularisers of the discriminator: gradient penalty (WGAN-GP), R1, weight clipping.

Penalties take the discriminator itself, not its outputs, because they differentiate D with
respect to its input. They return the unweighted penalty; the model multiplies by its weight.

A packed discriminator (PacGAN, ``D.pack = k``) scores groups of k consecutive items; its
input is the whole group, so gradient norms are taken over each group and the WGAN-GP
interpolation uses one ``eps`` per group.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

Discriminator = Callable[..., Tensor]


def _score(D: Discriminator, x: Tensor, c: Tensor | None) -> Tensor:
    return D(x) if c is None else D(x, c)


def _pack(D: Discriminator) -> int:
    return int(getattr(D, "pack", 1))


def _input_gradients(D: Discriminator, x: Tensor, c: Tensor | None) -> Tensor:
    """dD/dx per input of D (one sample, or one pack of samples), flattened to
    [inputs, features], kept in the graph so that the penalty built from it can be
    back-propagated into D's parameters."""
    if not x.is_floating_point():
        raise ValueError(
            f"input penalties need continuous inputs, got dtype {x.dtype}; "
            "for token sequences apply them to the embedded or one-hot inputs"
        )
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(_score(D, x, c).sum(), x, create_graph=True)
    return grad.reshape(grad.shape[0] // _pack(D), -1) * _input_scale(D)


def _input_scale(D: Discriminator) -> float:
    """How far one unit of D's standardised input space stretches in data space (1 for most
    nets; see :class:`gankit.nets.mlp.StandardizedSpace`): gradients are measured per
    standardised unit, so a penalty's weight means the same for a cloud of any size."""
    modules = D.modules() if isinstance(D, nn.Module) else ()
    return next((m.input_scale for m in modules if isinstance(getattr(m, "input_scale", None), float)), 1.0)


def gradient_penalty(D: Discriminator, real: Tensor, fake: Tensor, c: Tensor | None = None,
                     one_sided: bool = False,
                     generator: torch.Generator | None = None, eps: Tensor | None = None) -> Tensor:
    """WGAN-GP penalty ``E[(||grad D(x_hat)||_2 - 1)^2]`` (Gulrajani et al., 2017).

    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U[0, 1]`` per input of D
    (sample or pack), drawn from ``generator`` when given, or given as ``eps`` (one value per
    input of D; the trainer passes its slice of a global draw, so ranks match one process).
    ``one_sided`` penalises only norms above 1: ``E[max(0, ||grad|| - 1)^2]``. ``c`` is passed to D as ``D(x, c)`` when not None.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} "
                         f"and {tuple(fake.shape)}")
    group = _pack(D)
    if eps is None:
        device = generator.device if generator is not None else real.device
        eps = torch.rand(real.shape[0] // group, generator=generator, device=device)
    elif eps.numel() * group != real.shape[0]:
        raise ValueError(f"eps needs one value per input of D ({real.shape[0] // group}), "
                         f"got {eps.numel()}")
    # one value per input of D, repeated over the members of its pack, broadcast over features
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = eps.reshape(-1).repeat_interleave(group).reshape(shape).to(real)
    x_hat = eps * real.detach() + (1.0 - eps) * fake.detach()
    norms = _input_gradients(D, x_hat, c).norm(2, dim=1)
    excess = norms - 1.0
    if one_sided:
        excess = F.relu(excess)
    return excess.square().mean()


def r1_penalty(D: Discriminator, real: Tensor, c: Tensor | None = None) -> Tensor:
    """R1 penalty ``E[||grad_x D(x)||^2]`` at real data (Mescheder et al., 2018).

    Unweighted: the caller multiplies by ``gamma / 2``.
    """
    return _input_gradients(D, real, c).square().sum(dim=1).mean()


@torch.no_grad()
def clip_weights(module: nn.Module, bound: float) -> None:
    """Clamp every parameter of ``module`` to ``[-bound, bound]`` in place (original WGAN)."""
    if not bound > 0:
        raise ValueError(f"clip bound must be positive, got {bound}")
    for p in module.parameters():
        p.clamp_(-bound, bound)
