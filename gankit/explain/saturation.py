"""saturating-vs-nonsaturating: the minimax G loss goes flat exactly when G is bad.

A generator fresh from initialisation (all its points near the origin) faces the ring of 8
Gaussians, and a discriminator is trained for a while against it with the usual BCE loss,
as happens early in training when D learns faster than G. Through that real D we measure,
for points ranging from G's own samples to real ones, the gradient each G loss sends back to
the point (``||dL/dx||``) against ``D(x)``, and the gradient each loss sends to G's weights.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from gankit.data.toy import sample_mixture
from gankit.explain.base import Topic, critic, generator, pyplot, register, save_figure
from gankit.objectives import get_objective

SETTINGS = {"quick": (150, 128, 512), "full": (400, 256, 2048)}  # D steps, batch, probe points
LOSSES = ("minimax", "nonsaturating")
BAD = 0.1  # "G is bad": D(G(z)) below this


def _train_d(G: torch.nn.Module, D: torch.nn.Module, steps: int, batch: int, seed: int) -> None:
    d_loss = get_objective("nonsaturating").d_loss  # both objectives train D the same way
    opt = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.9))
    real_all, _ = sample_mixture("ring8", steps * batch, seed=seed)
    for real in real_all.split(batch):
        with torch.no_grad():
            fake = G(torch.randn(batch, G.z_dim))
        loss = d_loss(D(real), D(fake))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def _point_gradients(D: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """``||dL/dx||`` of each G loss, per point (the loss summed over points, not averaged)."""
    out = {}
    for name in LOSSES:
        xi = x.detach().requires_grad_(True)
        logits = D(xi)
        (grad,) = torch.autograd.grad(get_objective(name).g_loss(logits) * len(x), xi)
        out[name] = grad.norm(dim=1)
    return out


def _weight_gradient(G: torch.nn.Module, D: torch.nn.Module, name: str, n: int) -> float:
    G.zero_grad(set_to_none=True)
    get_objective(name).g_loss(D(G(torch.randn(n, G.z_dim)))).backward()
    return float(torch.cat([p.grad.reshape(-1) for p in G.parameters()]).norm())


def run(size: str, seed: int) -> tuple[dict[str, Any], Callable[[Path], None]]:
    steps, batch, n = SETTINGS[size]
    G, D = generator(2, 8, seed=seed), critic(2, seed=seed + 1)
    _train_d(G, D, steps, batch, seed)
    torch.manual_seed(seed)
    with torch.no_grad():
        fake = G(torch.randn(n, 8))
    real, _ = sample_mixture("ring8", n, seed=seed + 1)
    # probes from G's samples (t = 0) to real points (t = 1): every level of D's belief
    t = torch.rand(n, 1)
    probes = (1 - t) * fake + t * real
    with torch.no_grad():
        d_prob = torch.sigmoid(D(probes))
    grads = _point_gradients(D, probes)
    bad = d_prob < BAD
    numbers = {
        "d_of_fake_mean": float(torch.sigmoid(D(fake)).mean().detach()),
        "d_prob": d_prob, "grad_minimax": grads["minimax"], "grad_nonsaturating": grads["nonsaturating"],
        "bad_threshold": BAD, "bad_points": int(bad.sum()),
        "bad_grad_minimax": float(grads["minimax"][bad].mean()),
        "bad_grad_nonsaturating": float(grads["nonsaturating"][bad].mean()),
        "weight_grad_minimax": _weight_gradient(G, D, "minimax", n),
        "weight_grad_nonsaturating": _weight_gradient(G, D, "nonsaturating", n),
        "d_steps": steps,
    }
    numbers["bad_ratio"] = numbers["bad_grad_nonsaturating"] / numbers["bad_grad_minimax"]
    numbers["weight_ratio"] = numbers["weight_grad_nonsaturating"] / numbers["weight_grad_minimax"]
    return numbers, lambda path: _draw(numbers, path)


def _draw(n: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for name, marker in zip(LOSSES, ("o", "s")):
        a.scatter(n["d_prob"], n[f"grad_{name}"], s=4, alpha=0.5, marker=marker,
                  label={"minimax": "minimax: log(1 - D(G(z)))",
                         "nonsaturating": "non-saturating: -log D(G(z))"}[name])
    a.axvspan(0, n["bad_threshold"], color="0.9", zorder=0, label="G is bad (D(x) < 0.1)")
    a.set_yscale("log")
    a.set(xlabel="D(x) for points between G's samples and real data", ylabel="||dL/dx||",
          title="Gradient reaching a generated point")
    a.legend(fontsize=8, markerscale=3)
    b.bar(["minimax", "non-saturating"], [n["weight_grad_minimax"], n["weight_grad_nonsaturating"]],
          color=["tab:blue", "tab:orange"])
    b.set_yscale("log")
    b.set(ylabel="||dL/d(weights of G)||",
          title=f"Gradient on G's weights (mean D(G(z)) = {n['d_of_fake_mean']:.3f})")
    save_figure(fig, path)


register(Topic(
    name="saturating-vs-nonsaturating",
    title="The minimax G loss saturates when D rejects G's samples",
    run=run,
    explanation="""
Early in training G is bad and D learns quickly to reject it: here D(G(z)) averages
{d_of_fake_mean}. The minimax loss log(1 - D(G(z))) has slope -D(G(z)) in D's logit, so
where D is sure the sample is fake the gradient vanishes: for points with D(x) < 0.1 it
averages {bad_grad_minimax}, against {bad_grad_nonsaturating} for the non-saturating loss
-log D(G(z)) ({bad_ratio} times larger). On G's weights the gap is {weight_ratio}x. Both
losses have the same fixed point; the non-saturating one simply keeps pushing G when G
most needs it, which is why it is the loss used in practice.
""",
))
