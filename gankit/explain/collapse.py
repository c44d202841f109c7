"""collapse-and-dropping: where a GAN's samples sit on the ring of 8 Gaussians over training.

Three GANs (gankit's ``gan`` model built from the ``toy_ring8`` preset, trained phase by phase
as the trainer does) learn the ring:

* *collapsing*: no penalty, and the discriminator learns ten times slower than the
  generator. G piles its samples on one mode, D slowly learns to reject it, G jumps to
  another: mode collapse with hopping (the covered set is small and keeps changing);
* *dropping*: the same, but the other way round, G ten times slower than D. D soon
  separates real from fake everywhere G has not been; G, moving slowly, follows D only to
  the modes next to where it started and never receives a useful signal from the far side
  of the ring: mode dropping (a fixed subset covered, the other modes never learned);
* *stable*: the preset's setting (non-saturating loss with the R1 penalty), which covers
  all eight.

At regular steps we draw samples from the live generator and read gankit's toy metrics
(modes covered, high-quality share) and the share of samples nearest each mode.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from gankit.config import load_config
from gankit.data.info import DataInfo
from gankit.data.toy import sample_mixture
from gankit.explain.base import Topic, pyplot, register, save_figure
from gankit.metrics.toy import nearest_modes, toy_metrics
from gankit.models import MODELS

SETTINGS = {"quick": (1500, 150), "full": (4000, 200)}  # steps, evaluate every
# pinned here, so that re-tuning the toy_ring8 preset cannot change what this topic shows
SMALL = ["G.width=64", "D.width=64", "data.batch_size=128", "train.ema=0", "model.z_dim=8",
         "loss.penalty=r1", "loss.penalty_weight=1.0"]
UNPENALISED = ["loss.name=nonsaturating", "loss.penalty=none", "optim.beta1=0.5", "optim.beta2=0.999"]
RUNS = {
    "collapsing": UNPENALISED + ["optim.lr_d=0.0001", "optim.lr_g=0.001"],  # D 10x slower
    "dropping": UNPENALISED + ["optim.lr_d=0.001", "optim.lr_g=0.0001"],  # G 10x slower
    "stable": ["loss.name=nonsaturating"],  # the preset: R1 penalty, lr 1e-3, beta1 0
}
EVAL_SAMPLES = 1000
# Read per mode from the share of samples nearest it, after the first WARMUP of the steps:
HELD, EMPTY = 0.05, 0.01  # a mode is covered at a step with >= 5%, empty with < 1%
WARMUP = 0.2


def train(overrides: list[str], steps: int, every: int, seed: int) -> dict[str, Any]:
    """Train one GAN on ring8; return its toy metrics and mode occupancy per evaluation."""
    cfg = load_config("toy_ring8", SMALL + overrides + [f"train.seed={seed}"])
    torch.manual_seed(seed)
    model = MODELS.get("gan")(cfg, DataInfo("vector", (2,), name="ring8"))
    model.optimizers = model.configure_optimizers()
    batch = cfg.data.batch_size
    data, _ = sample_mixture("ring8", steps * batch * cfg.train.n_critic, seed=seed)
    batches = iter(data.split(batch))
    log: dict[str, list] = {"step": [], "modes": [], "high_quality": [], "occupancy": []}
    for step in range(1, steps + 1):
        for phase in model.schedule():
            model.train_phase(phase.name, {"x": next(batches)} if phase.needs_batch else None, step)
        if step % every == 0:
            x = model.generate(EVAL_SAMPLES, generator=torch.Generator().manual_seed(seed + 1),
                               use_ema=False)
            m = toy_metrics(x, "ring8")
            nearest, _ = nearest_modes(x, "ring8")
            log["step"].append(step)
            log["modes"].append(m["modes"])
            log["high_quality"].append(m["high_quality"])
            log["occupancy"].append((torch.bincount(nearest, minlength=8) / len(x)).tolist())
    log["final_samples"] = x
    return log


def covered_sets(occupancy: list[list[float]]) -> list[list[int]]:
    """Per evaluation, the modes holding at least ``HELD`` of the samples."""
    return [[k for k, share in enumerate(row) if share >= HELD] for row in occupancy]


def summarise(log: dict[str, Any], warmup_steps: int) -> dict[str, Any]:
    """Collapse and dropping read from the occupancy (share of samples nearest each mode).

    Collapse: the top mode's mean share, how often the top mode changes between evaluations
    (hops), how often the covered set changes, its largest size, and how many modes it
    visits over the run. Dropping, after the warm-up: the modes *empty* (under 1% of the
    samples) at every evaluation, never learned, and the modes *held* (at least 5%) at every
    evaluation."""
    occ = torch.tensor(log["occupancy"])
    top = occ.argmax(1)
    sets = covered_sets(log["occupancy"])
    late = occ[torch.tensor(log["step"]) > warmup_steps]
    dropped = torch.nonzero((late < EMPTY).all(0)).flatten().tolist()
    held = torch.nonzero((late >= HELD).all(0)).flatten().tolist()
    return {"top_mode_share_mean": float(occ.max(1).values.mean()),
            "hops": int((top[1:] != top[:-1]).sum()),
            "covered_set_changes": sum(a != b for a, b in zip(sets, sets[1:])),
            "max_covered": max(len(c) for c in sets),
            "modes_ever_occupied": len(set().union(*map(set, sets))),
            "modes_dropped": len(dropped), "dropped": dropped,
            "dropped_text": ", ".join(map(str, dropped)) or "none",
            "modes_held": len(held), "held": held, "held_text": ", ".join(map(str, held)) or "none",
            "final_modes": log["modes"][-1], "final_high_quality": log["high_quality"][-1],
            "max_modes": max(log["modes"])}


def run(size: str, seed: int) -> tuple[dict[str, Any], Callable[[Path], None]]:
    steps, every = SETTINGS[size]
    warmup = int(WARMUP * steps)
    logs = {name: train(over, steps, every, seed) for name, over in RUNS.items()}
    summaries = {name: summarise(log, warmup) for name, log in logs.items()}
    numbers = {"steps": steps, "warmup_steps": warmup, "held_share": HELD, "empty_share": EMPTY,
               "settings": RUNS,
               "runs": {n: {k: v for k, v in log.items() if k != "final_samples"}
                        for n, log in logs.items()},
               "summary": summaries,
               **{f"{k}_{n}": v for n, s in summaries.items() for k, v in s.items()}}
    samples = {n: log["final_samples"] for n, log in logs.items()}
    return numbers, lambda path: _draw(numbers, samples, path)


TITLES = {"collapsing": "collapsing (D lr 1e-4, G lr 1e-3, no penalty)",
          "dropping": "dropping (D lr 1e-3, G lr 1e-4, no penalty)",
          "stable": "stable (preset: R1 penalty, lr 1e-3)"}


def _modes(modes: list[int]) -> str:
    return "all 8" if len(modes) == 8 else ", ".join(map(str, modes)) or "none"


def _draw(n: dict[str, Any], samples: dict[str, torch.Tensor], path: Path) -> None:
    from gankit.data.toy import mixture

    plt = pyplot()
    rows = len(n["runs"])
    fig, axes = plt.subplots(rows, 3, figsize=(15, 4.6 * rows))
    means = mixture("ring8")[0]
    for row, (name, log) in zip(axes, n["runs"].items()):
        title = TITLES.get(name, name)
        occ = torch.tensor(log["occupancy"]).T
        step, every = log["step"], log["step"][1] - log["step"][0]
        im = row[0].imshow(occ.numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1,
                           extent=(step[0] - every / 2, step[-1] + every / 2, 7.5, -0.5))
        row[0].axvline(n["warmup_steps"], c="white", ls=":", lw=1)
        s = n["summary"][name]
        row[0].set(xlabel="training step", ylabel="mode (nearest to the sample)", yticks=range(8),
                   title=f"{title}\nshare of samples nearest each mode; after the warm-up "
                         f"(dotted line):\nheld throughout: {_modes(s['held'])}; never reached: "
                         f"{_modes(s['dropped'])}")
        row[0].title.set_fontsize(9)
        fig.colorbar(im, ax=row[0], label="share of samples")
        row[1].plot(step, log["modes"], "o-", label="modes covered (of 8)")
        row[1].plot(step, [len(c) for c in covered_sets(log["occupancy"])], "^:", c="tab:green",
                    label=f"modes holding >= {n['held_share']:.0%} of samples")
        ax2 = row[1].twinx()
        ax2.plot(step, log["high_quality"], "s--", c="tab:orange", label="high-quality share")
        ax2.set(ylabel="high-quality share", ylim=(0, 1))
        row[1].set(xlabel="training step", ylabel="modes", ylim=(0, 8.5),
                   title=f"{name}: gankit toy metrics")
        handles = row[1].get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        row[1].legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2,
                      fontsize=8, frameon=False)
        x = samples[name].numpy()
        row[2].scatter(x[:, 0], x[:, 1], s=2, alpha=0.4, label="samples")
        row[2].scatter(means[:, 0], means[:, 1], c="red", marker="x", label="true modes")
        for k, (mx, my) in enumerate(means.tolist()):
            row[2].annotate(str(k), (mx, my), xytext=(1.25 * mx, 1.25 * my), ha="center",
                            va="center", fontsize=8, color="red")
        row[2].set(xlim=(-1.6, 1.6), ylim=(-1.6, 1.6), aspect="equal", xlabel="x1", ylabel="x2",
                   title=f"{name}: samples at step {step[-1]}")
        legend = row[2].legend(fontsize=8, loc="upper right")
        handles = getattr(legend, "legend_handles", None) or legend.legendHandles
        handles[0].set_sizes([20])
        handles[0].set_alpha(1.0)
    save_figure(fig, path, palette=True)  # three rows of panels: 215 kB in full colour


register(Topic(
    name="collapse-and-dropping",
    title="Mode collapse (hopping) and mode dropping against a stable GAN on the ring",
    run=run,
    explanation="""
Collapse: the collapsing GAN (its D learns ten times slower than G, no penalty) puts on
average {top_mode_share_mean_collapsing} of its samples near a single mode; the set of modes
holding at least 5% of the samples never has more than {max_covered_collapsing} member(s),
and it changed {covered_set_changes_collapsing} times in {steps} steps: G piles everything
on one mode, D learns to reject it, G jumps to another mode, and so on. Over the run it
visits {modes_ever_occupied_collapsing} of the 8 modes in turn and holds
{modes_held_collapsing} of them at every evaluation after the warm-up: what it covers
keeps moving.

Dropping: the same GAN with the rates the other way round (G ten times slower than D) keeps
{modes_held_dropping} mode(s) ({held_text_dropping}) covered at every evaluation after the
warm-up (the first {warmup_steps} steps), while {modes_dropped_dropping} mode(s)
({dropped_text_dropping}) hold under 1% of the samples at every one of them: never learned.
D soon separates real from fake wherever G is not, and G, moving slowly, follows its
gradient only to the modes near where it started; the far side of the ring never pulls it
over. In the left panels, a dropped mode is a row that stays dark; collapse is a bright cell
that jumps from row to row.

The stable GAN (non-saturating loss with the R1 penalty, as in the toy_ring8 preset) spreads
its samples over the modes (top-mode share {top_mode_share_mean_stable}, 1/8 = 0.125 is
perfectly even) and ends with {final_modes_stable} of 8 modes covered
({modes_dropped_stable} never learned), the high-quality share still growing
({final_high_quality_stable}): its remaining fault is blur around the modes, not missing ones.
""",
))
