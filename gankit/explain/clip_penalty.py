"""clipping-vs-penalty: how weight clipping and the gradient penalty shape a WGAN critic.

Two copies of gankit's MLP critic learn to tell the ring of 8 Gaussians from the samples of
a freshly initialised generator: one with the original WGAN's weight clipping (every weight
clamped to [-c, c] after each step, as ``clip_weights`` does), one with WGAN-GP's penalty
``(||grad D|| - 1)^2`` on random interpolates. Afterwards we read each critic's weights and
its gradient norms at the points the penalty looks at.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from gankit.data.toy import sample_mixture
from gankit.explain.base import Topic, critic, generator, pyplot, register, save_figure
from gankit.objectives import clip_weights, get_objective, gradient_penalty

SETTINGS = {"quick": (300, 128), "full": (2000, 256)}  # critic steps, batch
CLIP = 0.01  # the WGAN paper's c
GP_WEIGHT = 10.0


def _weights(D: torch.nn.Module) -> torch.Tensor:
    """Every weight matrix of D flattened (biases left out, as in the WGAN-GP figure)."""
    return torch.cat([p.detach().reshape(-1) for n, p in D.named_parameters() if n.endswith("weight")])


def _grad_norms(D: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    eps = torch.rand(len(real), 1)
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x)
    return grad.norm(dim=1)


def train_critic(mode: str, steps: int, batch: int, seed: int) -> dict[str, Any]:
    """Train a critic with ``mode`` = 'clip' or 'gp'; return its weights and gradient norms."""
    D, G = critic(2, width=64, depth=3, seed=seed), generator(2, 8, seed=seed + 1)
    d_loss = get_objective("wgan" if mode == "clip" else "wgan-gp").d_loss
    # the optimisers of the two papers: RMSprop for clipping, Adam for the penalty
    opt = (torch.optim.RMSprop(D.parameters(), lr=5e-4) if mode == "clip"
           else torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.9)))
    real_all, _ = sample_mixture("ring8", steps * batch + 2048, seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        fake_all = G(torch.randn(len(real_all), 8, generator=g))
    if mode == "clip":
        clip_weights(D, CLIP)
    for real, fake in zip(real_all[:-2048].split(batch), fake_all[:-2048].split(batch)):
        loss = d_loss(D(real), D(fake))
        if mode == "gp":
            loss = loss + GP_WEIGHT * gradient_penalty(D, real, fake, generator=g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if mode == "clip":
            clip_weights(D, CLIP)
    real, fake = real_all[-2048:], fake_all[-2048:]
    w = _weights(D)
    norms = _grad_norms(D, real, fake)
    with torch.no_grad():
        gap = float(D(real).mean() - D(fake).mean())
    top = w.abs().max()
    return {"weights": w, "grad_norms": norms, "critic_gap": gap,
            "share_at_bound": float((w.abs() >= 0.99 * top).double().mean()),
            "max_abs_weight": float(top), "median_grad_norm": float(norms.median()),
            "mean_abs_norm_minus_1": float((norms - 1).abs().mean())}


def run(size: str, seed: int) -> tuple[dict[str, Any], Callable[[Path], None]]:
    steps, batch = SETTINGS[size]
    critics = {mode: train_critic(mode, steps, batch, seed) for mode in ("clip", "gp")}
    numbers = {"clip": CLIP, "steps": steps, "critics": critics,
               **{f"{k}_{mode}": critics[mode][k] for mode in critics
                  for k in ("share_at_bound", "max_abs_weight", "median_grad_norm", "critic_gap")}}
    return numbers, lambda path: _draw(numbers, path)


def _draw(n: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, mode, label in zip(axes, ("clip", "gp"), (f"weight clipping (c = {n['clip']})",
                                                         "gradient penalty (weight 10)")):
        c = n["critics"][mode]
        ax.hist(c["weights"].numpy(), bins=60, color="tab:blue" if mode == "clip" else "tab:orange")
        ax.set(xlabel="weight value", ylabel="number of weights", title=f"Critic weights: {label}")
        ax.locator_params(axis="x", nbins=5)
    c = axes[2]
    for mode, label in (("clip", "weight clipping"), ("gp", "gradient penalty")):
        norms = n["critics"][mode]["grad_norms"].clamp_min(1e-6).log10().numpy()
        c.hist(norms, bins=50, alpha=0.6, label=label)
    c.axvline(0.0, c="k", ls="--", lw=0.8, label="norm 1 (the 1-Lipschitz target)")
    c.set(xlabel="log10 ||grad_x D(x)|| at interpolates", ylabel="points",
          title="Critic gradient norms")
    c.legend(fontsize=8)
    save_figure(fig, path)


register(Topic(
    name="clipping-vs-penalty",
    title="Clipping pins weights to +-c; the penalty keeps gradient norms near 1",
    run=run,
    explanation="""
Both critics were trained to separate the ring from a fresh generator's samples. With
clipping, a share of {share_at_bound_clip} of the weights sits at +-c = {clip}: the clamp
cuts them there and the optimiser, wanting larger weights, keeps them there, so the critic
is a nearly binary network of tiny weights. Its gradient norms are far below 1 (median {median_grad_norm_clip}),
so it measures only a shrunken, distorted Wasserstein distance (gap {critic_gap_clip}). With
the gradient penalty, a share of only {share_at_bound_gp} of the weights sits at their largest value
({max_abs_weight_gp}), and the median gradient norm is {median_grad_norm_gp}: the penalty
enforces the 1-Lipschitz constraint where it matters, between real and fake points, without
limiting the critic's capacity (gap {critic_gap_gp}).
""",
))
