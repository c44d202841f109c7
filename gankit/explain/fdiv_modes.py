"""mode-seeking-vs-covering: one Gaussian fitted to two modes with each f-divergence.

The target is an even mixture of N(-2, 0.5^2) and N(+2, 0.5^2); the generator is a single
Gaussian ``mu + sigma z`` (two parameters), started slightly right of centre. Each row of
gankit's f-divergence table is trained as an f-GAN (gankit's MLP critic, the row's
activation and conjugate). KL(P || Q) charges Q for every real point it misses, so Q
spreads over both modes; reverse KL charges Q for every sample it puts where P has none, so
Q settles on one mode.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from gankit.explain.base import Topic, critic, pyplot, register, save_figure
from gankit.objectives import fgan_objective

# G steps, batch, divergences (quick: the two the claim is about)
SETTINGS = {"quick": (500, 256, ("kl", "reverse-kl")),
            "full": (2000, 256, ("kl", "reverse-kl", "js", "pearson", "hellinger"))}
MODES, SPREAD = (-2.0, 2.0), 0.5
# G starts right of centre, so a mode-seeking fit has a mode to choose; D takes several
# faster steps per G step so that it tracks the density ratio the bound needs.
MU0, N_CRITIC, LR_D, LR_G = 1.0, 3, 5e-3, 3e-3


class GaussianGenerator(nn.Module):
    """x = mu + sigma z: the simplest generator, unable to put mass on two separate modes."""

    def __init__(self, mu: float = 0.3, sigma: float = 1.0):
        super().__init__()
        self.mu = nn.Parameter(torch.tensor(mu))
        self.log_sigma = nn.Parameter(torch.tensor(sigma).log())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.mu + self.log_sigma.exp() * z


def target(n: int, g: torch.Generator) -> torch.Tensor:
    """n draws of the two-mode target, [n, 1]."""
    centre = torch.tensor(MODES)[torch.randint(2, (n,), generator=g)]
    return (centre + SPREAD * torch.randn(n, generator=g)).unsqueeze(1)


def fit(divergence: str, steps: int, batch: int, seed: int, n_critic: int = N_CRITIC,
        mu0: float = MU0) -> dict[str, Any]:
    """Train the Gaussian G against an f-GAN critic; return its path of (mu, sigma)."""
    obj = fgan_objective(divergence, "saturating")
    D, G = critic(1, width=32, seed=seed), GaussianGenerator(mu0)
    opt_d = torch.optim.Adam(D.parameters(), lr=LR_D, betas=(0.5, 0.9))
    opt_g = torch.optim.Adam(G.parameters(), lr=LR_G, betas=(0.5, 0.9))
    g = torch.Generator().manual_seed(seed)
    path = []
    for step in range(steps):
        for _ in range(n_critic):
            real, z = target(batch, g), torch.randn(batch, 1, generator=g)
            loss_d = obj.d_loss(D(real), D(G(z).detach()))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        loss_g = obj.g_loss(D(G(torch.randn(batch, 1, generator=g))))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if step % max(1, steps // 50) == 0 or step == steps - 1:
            path.append((step, G.mu.item(), G.log_sigma.exp().item()))
    mu, sigma = G.mu.item(), G.log_sigma.exp().item()
    return {"mu": mu, "sigma": sigma, "path": path, **mode_shares(mu, sigma)}


def mode_shares(mu: float, sigma: float) -> dict[str, float]:
    """Share of G's mass within 3 spreads of each mode (the toy metrics' high-quality rule)."""
    normal = torch.distributions.Normal(mu, sigma)
    shares = [float(normal.cdf(torch.tensor(m + 3 * SPREAD)) - normal.cdf(torch.tensor(m - 3 * SPREAD)))
              for m in MODES]
    return {"mass_left": shares[0], "mass_right": shares[1], "modes_covered": sum(s > 0.1 for s in shares)}


def run(size: str, seed: int) -> tuple[dict[str, Any], Callable[[Path], None]]:
    steps, batch, divergences = SETTINGS[size]
    fits = {d: fit(d, steps, batch, seed) for d in divergences}
    numbers = {"modes": list(MODES), "spread": SPREAD, "steps": steps, "fits": fits,
               **{f"{k}_{d.replace('-', '_')}": fits[d][k] for d in ("kl", "reverse-kl")
                  for k in ("mu", "sigma", "modes_covered")}}
    return numbers, lambda path: _draw(numbers, path)


def _draw(n: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    x = torch.linspace(-5, 5, 400)
    p = sum(torch.distributions.Normal(m, SPREAD).log_prob(x).exp() for m in MODES) / 2
    a.fill_between(x.numpy(), p.numpy(), color="0.85", label="target P (two modes)")
    for d, fitted in n["fits"].items():
        q = torch.distributions.Normal(fitted["mu"], fitted["sigma"]).log_prob(x).exp()
        a.plot(x.numpy(), q.numpy(), label=f"{d}: mu={fitted['mu']:.2f}, sigma={fitted['sigma']:.2f}")
    a.set(xlabel="x", ylabel="density", title="A single Gaussian fitted with each f-divergence")
    a.legend(fontsize=7)
    for d, fitted in n["fits"].items():
        steps, mus, sigmas = zip(*fitted["path"])
        line, = b.plot(steps, mus, label=f"{d}: mu")
        b.plot(steps, sigmas, ls="--", c=line.get_color())
    b.set(xlabel="training step", ylabel="mu (solid), sigma (dashed)", title="Fitting path")
    b.legend(fontsize=7)
    save_figure(fig, path)


register(Topic(
    name="mode-seeking-vs-covering",
    title="Reverse KL seeks a mode, KL covers both",
    run=run,
    explanation="""
A generator that can only make one Gaussian was trained as an f-GAN against a target with
modes at -2 and +2. With KL(P || Q) it ended at mu = {mu_kl}, sigma = {sigma_kl}: KL punishes
every real point Q misses, so Q stretches over both modes ({modes_covered_kl} covered) and
puts mass in the empty gap between them. With reverse KL(Q || P) it ended at mu =
{mu_reverse_kl}, sigma = {sigma_reverse_kl}: reverse KL punishes samples where P has none,
so Q locks onto one mode ({modes_covered_reverse_kl} covered) and gives up the other. JS,
Hellinger and Pearson fall in between (see the figure). The choice of divergence decides
whether a model under-fits by blurring or by dropping modes.
""",
))
