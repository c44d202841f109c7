"""js-vs-wasserstein: on disjoint supports JS is flat in the distance, Wasserstein is not.

Real points lie on the segment x = 0, fake points on x = theta (y uniform in [0, 1] on
both). For each theta a fresh discriminator is trained to near optimality with the
``minimax`` objective (whose optimum is ``max_D V = 2 JS - 2 log 2``) and a fresh critic with
``wgan-gp`` (whose value ``E_P[D] - E_Q[D]`` estimates W = theta). Then G's gradient with
respect to theta is read through each trained net with each objective's own G loss.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import torch

from gankit.explain.base import Topic, critic, pyplot, register, save_figure
from gankit.objectives import get_objective, gradient_penalty

SETTINGS = {  # thetas, D steps, batch
    "quick": ((0.0, 1.0, 2.5, 4.0), 300, 128),
    "full": ((0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0), 600, 256),
}
LOG2 = math.log(2.0)


def _segment(n: int, x: float | torch.Tensor, g: torch.Generator) -> torch.Tensor:
    y = torch.rand(n, 1, generator=g)
    return torch.cat([torch.zeros(n, 1) + x, y], 1)


def _train(name: str, theta: float, steps: int, batch: int, seed: int) -> tuple[float, float]:
    """Train a D for ``name`` at ``theta``; return (its value on fresh batches, dG/dtheta)."""
    obj = get_objective(name)
    D = critic(2, seed=seed)
    opt = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.9))
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        real, fake = _segment(batch, 0.0, g), _segment(batch, theta, g)
        loss = obj.d_loss(D(real), D(fake))
        if obj.default_penalty == "gp":
            loss = loss + 10.0 * gradient_penalty(D, real, fake, generator=g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    real, t = _segment(4096, 0.0, g), torch.tensor(theta, requires_grad=True)
    fake = _segment(4096, t, g)
    value = -float(obj.d_loss(D(real), D(fake)).detach())  # what D maximised
    (grad,) = torch.autograd.grad(obj.g_loss(D(fake)), t)
    return value, float(grad)


def run(size: str, seed: int) -> tuple[dict[str, Any], Callable[[Path], None]]:
    thetas, steps, batch = SETTINGS[size]
    js, w, grad_js, grad_w = [], [], [], []
    for theta in thetas:
        v, gm = _train("minimax", theta, steps, batch, seed)
        js.append((v + 2 * LOG2) / 2)  # max_D V = 2 JS - 2 log 2
        grad_js.append(gm)
        v, gw = _train("wgan-gp", theta, steps, batch, seed)
        w.append(v)
        grad_w.append(gw)
    at = {t: i for i, t in enumerate(thetas)}
    numbers = {"theta": list(thetas), "js_estimate": js, "wasserstein_estimate": w,
               "grad_theta_minimax": grad_js, "grad_theta_wgan_gp": grad_w, "log2": LOG2,
               "d_steps": steps, "batch": batch,
               "js_at_1": js[at[1.0]], "js_at_4": js[at[4.0]],
               "w_at_1": w[at[1.0]], "w_at_4": w[at[4.0]]}
    return numbers, lambda path: _draw(numbers, path)


def _draw(n: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(n["theta"], n["js_estimate"], "o-", label="JS from a trained minimax D")
    a.plot(n["theta"], n["wasserstein_estimate"], "s-", label="W from a trained WGAN-GP critic")
    a.plot(n["theta"], n["theta"], ":", c="0.5", label="true W = theta")
    a.axhline(LOG2, ls="--", c="tab:blue", lw=0.8, label="log 2 (JS of disjoint supports)")
    a.set(xlabel="theta (distance between the two supports)", ylabel="estimated divergence",
          title="What a trained discriminator measures")
    a.legend(fontsize=8)
    b.plot(n["theta"], [abs(v) for v in n["grad_theta_minimax"]], "o-", label="minimax G loss")
    b.plot(n["theta"], [abs(v) for v in n["grad_theta_wgan_gp"]], "s-", label="WGAN G loss")
    b.set_yscale("log")
    b.set(xlabel="theta", ylabel="|d G loss / d theta|", title="Gradient G receives at theta")
    b.legend(fontsize=8)
    save_figure(fig, path)


register(Topic(
    name="js-vs-wasserstein",
    title="JS saturates on disjoint supports; Wasserstein grows with the distance",
    run=run,
    explanation="""
Real points sit on the line x = 0, fake points on x = theta. For every theta a fresh
discriminator was trained with the minimax GAN loss and a fresh critic with WGAN-GP.
The minimax D's value gives a JS estimate: {js_at_1} at theta = 1 and {js_at_4} at theta = 4,
both about log 2 = {log2}. Once the supports no longer overlap, JS is the same whatever the
distance, so it tells G nothing about which way to move (right panel: the minimax G loss
gives almost no gradient). The WGAN-GP critic's gap E_P[D] - E_Q[D] estimates the
Wasserstein distance: {w_at_1} at theta = 1 and {w_at_4} at theta = 4. It grows with the
distance, and its gradient keeps pointing G toward the data. That is why WGAN exists.
""",
))
