"""non-differentiable-sampling: three ways (not) to get a gradient through a sampled token.

gankit's LSTM generator (8-token vocabulary) emits one token; a fixed scorer gives token k
the score ``r_k`` in (0, 1) (a discriminator's belief that the token is real, linear in the
one-hot token as the first layer of every sequence discriminator is). The exact gradient of ``E_x[r_x]`` with respect to G's
logits is ``p * (r - p.r)``, computed here by enumerating the vocabulary. Against it, per
sample and through autograd:

* the hard sample ``argmax(logits + g)`` (Gumbel-max, exactly a draw of ``softmax``): the
  gradient of anything computed from it is zero;
* Gumbel-softmax, ``softmax((logits + g) / tau)``: a gradient, biased by the relaxation;
* the policy gradient (REINFORCE), ``r_x grad log p(x)``: unbiased, at a price in variance,
  with and without the usual baseline (the batch's mean score).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from gankit.explain.base import Topic, pyplot, register, save_figure
from gankit.nets.sequence import LSTMGenerator, gumbel_noise

VOCAB = 8
SETTINGS = {"quick": (20_000, (0.05, 0.1, 0.3, 1.0, 3.0, 10.0)),
            "full": (200_000, tuple(float(t) for t in torch.logspace(-1.5, 1.0, 16)))}


def _stats(grads: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """Relative bias of the mean estimate and relative variance of one sample's estimate."""
    scale = true.norm()
    mean = grads.mean(0)
    return {"bias": float((mean - true).norm() / scale),
            "variance": float((grads - mean).square().sum(1).mean() / scale ** 2)}


def _per_sample(logits: torch.Tensor, n: int, objective: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """d objective_i / d logits for each of ``n`` samples, [n, V], in one backward pass."""
    rows = logits.detach().expand(n, -1).clone().requires_grad_(True)
    out = objective(rows).sum()
    if not out.requires_grad:  # autograd found no path from the logits: the gradient is 0
        return torch.zeros_like(rows)
    (grad,) = torch.autograd.grad(out, rows)
    return grad


def _finite_difference_share(logits: torch.Tensor, noise: torch.Tensor, score: torch.Tensor,
                             eps: float = 1e-6) -> float:
    """Share of (sample, logit) pairs where nudging the logit by ``eps`` changes the hard
    sample's score: the finite-difference view of argmax's zero gradient (float64)."""
    y = logits.double() + noise.double()
    base = score.double()[y.argmax(-1)]
    changed = [(score.double()[(y + eps * F.one_hot(torch.tensor(k), VOCAB)).argmax(-1)] != base)
               for k in range(VOCAB)]
    return float(torch.stack(changed).double().mean())


def run(size: str, seed: int) -> tuple[dict[str, Any], Callable[[Path], None]]:
    n, temps = SETTINGS[size]
    torch.manual_seed(seed)
    G = LSTMGenerator(VOCAB, max_len=1)
    score = torch.rand(VOCAB)  # D's belief that each token is real, as SeqGAN's reward
    with torch.no_grad():
        logits = 2.0 * G.step(G.start_tokens(1, torch.device("cpu"))[:, 0], None)[0][0]
    logits = logits - logits.mean()  # scaled up from G's near-uniform start: a peakier p
    p = logits.softmax(-1)
    true = p * (score - p @ score)
    noise = gumbel_noise(torch.rand(n, VOCAB))
    argmax = _per_sample(logits, n, lambda l: F.one_hot((l + noise).argmax(-1), VOCAB).float() @ score)
    gumbel = {t: _stats(_per_sample(logits, n, lambda l: ((l + noise) / t).softmax(-1) @ score), true)
              for t in temps}
    tokens = (logits + noise).argmax(-1)  # Gumbel-max: exact samples of softmax(logits)
    r = score[tokens]
    reinforce = _per_sample(logits, n, lambda l: r * l.log_softmax(-1).gather(1, tokens[:, None])[:, 0])
    baseline = _per_sample(logits, n, lambda l: (r - r.mean()) * l.log_softmax(-1).gather(1, tokens[:, None])[:, 0])
    numbers = {"samples": n, "temperatures": list(temps), "probs": p, "scores": score,
               "true_gradient": true, "argmax_grad_max_abs": float(argmax.abs().max()),
               "argmax_fd_changed_share": _finite_difference_share(logits, noise, score),
               "gumbel_bias": [gumbel[t]["bias"] for t in temps],
               "gumbel_variance": [gumbel[t]["variance"] for t in temps],
               **{f"reinforce_{k}": v for k, v in _stats(reinforce, true).items()},
               **{f"reinforce_baseline_{k}": v for k, v in _stats(baseline, true).items()}}
    numbers.update({"tau_low": temps[0], "tau_high": temps[-1],
                    "gumbel_bias_low": numbers["gumbel_bias"][0], "gumbel_bias_high": numbers["gumbel_bias"][-1],
                    "gumbel_variance_low": numbers["gumbel_variance"][0],
                    "gumbel_variance_high": numbers["gumbel_variance"][-1]})
    return numbers, lambda path: _draw(numbers, path)


def _draw(n: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((a, "bias", "relative bias of the mean gradient"),
                           (b, "variance", "relative variance of one sample's gradient")):
        ax.plot(n["temperatures"], n[f"gumbel_{key}"], "o-", label="Gumbel-softmax")
        ax.axhline(n[f"reinforce_{key}"], c="tab:red", ls="--", label="REINFORCE")
        ax.axhline(n[f"reinforce_baseline_{key}"], c="tab:green", ls=":", label="REINFORCE with baseline")
        ax.set(xscale="log", yscale="log", xlabel="Gumbel-softmax temperature tau", ylabel=label)
    # a mean of n noisy samples is itself off by about sqrt(variance / n): the noise floor
    floor = [(v / n["samples"]) ** 0.5 for v in n["gumbel_variance"]]
    a.plot(n["temperatures"], floor, c="0.6", ls="-.", label="sampling noise of the Gumbel mean")
    a.legend(fontsize=8)
    b.legend(fontsize=8)
    a.set_title(f"Bias (argmax: gradient exactly {n['argmax_grad_max_abs']:g}, no signal at all)",
                fontsize=10)
    b.set_title(f"Variance ({n['samples']:,} samples per estimate)", fontsize=10)
    save_figure(fig, path)


register(Topic(
    name="non-differentiable-sampling",
    title="Argmax has no gradient; Gumbel-softmax trades bias for variance; REINFORCE pays in variance",
    run=run,
    explanation="""
A sequence GAN's generator picks discrete tokens. Through the hard pick, argmax(logits +
Gumbel noise), autograd finds no path at all: the gradient is exactly
{argmax_grad_max_abs}, however the scorer feels about the token. Gumbel-softmax replaces
the pick by softmax((logits + g) / tau). At tau = {tau_low} its mean gradient is close to
the true one (relative bias {gumbel_bias_low}) but a single sample's gradient is wild
(relative variance {gumbel_variance_low}); at tau = {tau_high} the variance falls to
{gumbel_variance_high} while the bias grows to {gumbel_bias_high}, because the relaxed
token is a blend the discriminator never sees in real data. The policy gradient
(REINFORCE) needs no relaxation and is unbiased (bias {reinforce_bias}, sampling noise
only), but each sample's estimate has relative variance {reinforce_variance};
subtracting a baseline brings it to {reinforce_baseline_variance}. This is why SeqGAN
uses rewards with baselines and many rollouts, and RelGAN anneals the temperature.
""",
))
