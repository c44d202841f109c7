"""The f-divergence table behind the f-GAN objectives (Nowozin, Cseke & Tomioka, 2016).

For a convex generator ``f`` with ``f(1) = 0`` the divergence of P from Q is
``D_f(P || Q) = E_Q[f(p/q)]``. Its Fenchel conjugate ``f*`` gives the variational bound

    D_f(P || Q) >= F(V) = E_P[g_f(V(x))] - E_Q[f*(g_f(V(x)))]

for any critic ``V``; ``g_f`` maps the critic's raw output into the domain of ``f*``. The
bound is tight when ``g_f(V(x)) = f'(p(x)/q(x))``. Every f-GAN objective is built from one
row of :data:`FDIVERGENCES`, so the five divergences share the same code path.

A note on ``js``: the paper's generator ``f(u) = u log u - (u + 1) log((1 + u) / 2)`` is the
one whose conjugate is ``-log(2 - e^t)``, and with it ``D_f = 2 JS(P || Q)`` (the usual
Jensen-Shannon divergence, bounded by ``log 2``). We keep ``f`` and ``f*`` consistent rather
than add a 1/2 that would change the conjugate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from gankit.registry import Registry

LOG2 = math.log(2.0)

TensorFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class FDivergence:
    """One row of the f-GAN table.

    ``conjugate_of_activation`` is ``f*(g_f(v))`` written in closed form: composing the two
    naively overflows or cancels for large ``|v|`` (e.g. JS: ``2 - exp(log 2 - tiny)``).
    ``slope_at_infinity`` is ``lim f(u)/u`` as ``u -> inf``: what each unit of P's mass
    costs where Q has none (``inf`` for KL and Pearson, which then diverge).
    """

    name: str
    generator: TensorFn  # f(u) for u = p/q >= 0
    slope_at_infinity: float
    activation: TensorFn  # g_f: raw critic output v -> domain of f*
    conjugate: TensorFn  # f*(t), as printed in the table
    conjugate_of_activation: TensorFn  # f*(g_f(v)), numerically stable

    def bound(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        """``F = E_P[g_f(v)] - E_Q[f*(g_f(v))]`` from raw critic outputs, averaged over
        every element (a [B] score and a [B, 1, h, w] patch map both work)."""
        return self.activation(real_out).mean() - self.conjugate_of_activation(fake_out).mean()


FDIVERGENCES: Registry[FDivergence] = Registry("f-divergence")


def _add(row: FDivergence) -> None:
    FDIVERGENCES.add(row.name, row)


_add(FDivergence(
    name="kl",
    generator=lambda u: torch.xlogy(u, u),
    slope_at_infinity=math.inf,
    activation=lambda v: v,
    conjugate=lambda t: torch.exp(t - 1.0),
    conjugate_of_activation=lambda v: torch.exp(v - 1.0),
))
_add(FDivergence(
    name="reverse-kl",
    generator=lambda u: -torch.log(u),
    slope_at_infinity=0.0,
    activation=lambda v: -torch.exp(-v),
    conjugate=lambda t: -1.0 - torch.log(-t),
    # -1 - log(exp(-v)) simplifies to v - 1, which never overflows.
    conjugate_of_activation=lambda v: v - 1.0,
))
_add(FDivergence(
    name="pearson",
    generator=lambda u: (u - 1.0).square(),
    slope_at_infinity=math.inf,
    activation=lambda v: v,
    conjugate=lambda t: 0.25 * t.square() + t,
    conjugate_of_activation=lambda v: 0.25 * v.square() + v,
))
_add(FDivergence(
    name="hellinger",  # squared Hellinger distance
    generator=lambda u: (torch.sqrt(u) - 1.0).square(),
    slope_at_infinity=1.0,
    activation=lambda v: -torch.expm1(-v),
    conjugate=lambda t: t / (1.0 - t),
    # (1 - e^-v) / e^-v = e^v - 1; the naive form divides by 1 - t, which rounds to 0.
    conjugate_of_activation=torch.expm1,
))
_add(FDivergence(
    name="js",
    generator=lambda u: torch.xlogy(u, u) - (u + 1.0) * torch.log((u + 1.0) / 2.0),
    slope_at_infinity=LOG2,
    activation=lambda v: LOG2 - F.softplus(-v),
    conjugate=lambda t: -torch.log(2.0 - torch.exp(t)),
    # -log(2 - 2 sigmoid(v)) = softplus(v) - log 2; the naive form takes log of 2 - 2 = 0.
    conjugate_of_activation=lambda v: F.softplus(v) - LOG2,
))


def get_fdivergence(name: str) -> FDivergence:
    """The table row for ``name``; an unknown name raises ConfigError naming the closest."""
    return FDIVERGENCES.get(name)


def variational_bound(name: str, real_out: Tensor, fake_out: Tensor) -> Tensor:
    """The variational lower bound ``F`` on ``D_f(P || Q)`` of divergence ``name`` (see
    :meth:`FDivergence.bound`); the D of an f-GAN maximises it."""
    return get_fdivergence(name).bound(real_out, fake_out)


def f_divergence(name: str, p: Tensor, q: Tensor) -> Tensor:
    """``D_f(P || Q) = sum_x q(x) f(p(x) / q(x))`` for discrete distributions on the same support.

    Points where ``q = 0`` contribute ``p * lim f(u)/u`` (the limit of ``q f(p/q)``), so
    disjoint supports give finite values where the divergence is finite (JS, Hellinger).
    """
    _check_distributions(p, q)
    row = get_fdivergence(name)
    q_pos = q > 0
    u = torch.where(q_pos, p / torch.where(q_pos, q, torch.ones_like(q)), torch.ones_like(p))
    inside = q * row.generator(u)
    # 0 * inf would be NaN where neither distribution has mass; such points contribute 0.
    outside = torch.where(p > 0, p * row.slope_at_infinity, torch.zeros_like(p))
    return torch.where(q_pos, inside, outside).sum()


def _check_distributions(p: Tensor, q: Tensor) -> None:
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {tuple(p.shape)} "
                         f"and {tuple(q.shape)}")
    for label, d in (("p", p), ("q", q)):
        if bool((d < 0).any()):
            raise ValueError(f"{label} has negative entries; pass probabilities")
        total = float(d.sum())
        if not math.isclose(total, 1.0, abs_tol=1e-4):
            raise ValueError(f"{label} sums to {total:.6g}, not 1; normalise it first")
