"""Sequence GAN benchmark: MLE vs SeqGAN vs Gumbel-softmax vs dense reward on the oracle
task, and unpaired style transfer on ``style_synth``, at the presets' ``cpu`` sizes.

    python benchmarks/sequences.py --out runs/bench_sequences          # the full benchmark
    python benchmarks/sequences.py --out /tmp/quick --quick            # a one-minute smoke run

The GAN presets pretrain G by MLE for ``model.pretrain_steps`` steps; here that pretraining is
run once (``mle_oracle`` for that many steps) and every GAN starts from it
(``model.init_from``), which is the same recipe without repeating it three times. The MLE
baseline continues the same pretraining run for as many steps as the longest GAN stage
(``--mle-extra``). Every model is scored from 2,000 samples at temperature 1 (NLL-oracle,
BLEU, self-BLEU) and on the 2,000 held-out oracle sequences (NLL-gen); the MLE baseline is
also swept over temperatures for the (NLL-gen, NLL-oracle) plot. Results go to
``OUT/results.json``, ``OUT/table.md`` and ``OUT/nll_plot.png``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gankit.api import load_run  # noqa: E402
from gankit.config import config_from_dict, load_config  # noqa: E402
from gankit.data.text import load_text_data  # noqa: E402
from gankit.metrics.text import evaluate_text_run  # noqa: E402
from gankit.metrics.text import evaluate_style  # noqa: E402
from gankit.training.checkpoint import load_checkpoint  # noqa: E402
from gankit.training.trainer import Trainer  # noqa: E402

GANS = ("seqgan", "gumbel", "dense")
TEMPERATURES = (0.7, 0.8, 0.9, 1.0, 1.1, 1.25)
QUICK = ["data.toy_samples=512", "data.vocab_size=200", "train.log_every=5"]


def train(preset: str, out: Path, overrides: list[str]) -> float:
    """Train a preset with overrides; return the minutes it took."""
    cfg = load_config(preset, overrides + ["train.progress=false"])
    start = time.time()
    Trainer(cfg, out).fit()
    return (time.time() - start) / 60


def continue_run(src: Path, dst: Path, steps: int) -> float:
    """Copy a finished run and train it on to ``steps`` (an exact continuation)."""
    shutil.copytree(src, dst)
    cfg = config_from_dict(load_checkpoint(dst / "checkpoints" / "last.pt")["config"])
    cfg.train.steps = steps
    start = time.time()
    Trainer(cfg, dst, resume=True).fit()
    return (time.time() - start) / 60


def oracle_benchmark(out: Path, quick: bool, mle_extra: int) -> dict:
    extra = QUICK if quick else []
    pre_steps = 20 if quick else load_config("seqgan_oracle").model.pretrain_steps
    results: dict = {}
    pre_min = train("mle_oracle", out / "mle_pretrain", extra + [f"train.steps={pre_steps}"])
    results["mle_pretrain"] = {"minutes": pre_min, "steps": pre_steps}
    for kind in GANS:
        cfg = load_config(f"{kind}_oracle")
        steps = 10 if quick else cfg.train.steps - cfg.model.pretrain_steps
        quick_d = ["model.d_pretrain_steps=2"] if quick else []
        minutes = train(f"{kind}_oracle", out / kind, extra + quick_d + [
            f"model.init_from={out / 'mle_pretrain'}", "model.pretrain_steps=0", f"train.steps={steps}"])
        results[kind] = {"minutes": pre_min + minutes, "steps": pre_steps + steps}
    extra_steps = 10 if quick else mle_extra
    minutes = continue_run(out / "mle_pretrain", out / "mle", pre_steps + extra_steps)
    results["mle"] = {"minutes": pre_min + minutes, "steps": pre_steps + extra_steps}
    return score_oracle_runs(out, results, quick)


def score_oracle_runs(out: Path, results: dict, quick: bool) -> dict:
    n = 200 if quick else 2000
    data = None
    for name in ["mle_pretrain", "mle", *GANS]:
        run = load_run(out / name)
        data = data or load_text_data(run.cfg.data)
        results[name].update(evaluate_text_run(run, n=n, bleu_n=min(n, 500), data=data))
        print(name, json.dumps(results[name]), flush=True)
    run = load_run(out / "mle")
    results["mle_temperatures"] = {
        str(t): evaluate_text_run(run, n=n // 2, temperature=t, bleu_n=50, orders=(2,), data=data)
        for t in TEMPERATURES}
    return results


def style_benchmark(out: Path, quick: bool) -> dict:
    overrides = ["train.steps=20"] if quick else []
    minutes = train("style_synth", out / "style", overrides)
    run = load_run(out / "style")
    data = load_text_data(run.cfg.data)
    scores = evaluate_style(lambda x, to: run.model.translate(x, to), data.test, data.style, data.vocab)
    scores["minutes"] = minutes
    print("style", json.dumps(scores), flush=True)
    return scores


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = results["mle_temperatures"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ts = sorted(sweep, key=float)
    ax.plot([sweep[t]["nll_gen"] for t in ts], [sweep[t]["nll_oracle"] for t in ts], "o-", c="gray",
            label="MLE, temperature swept")
    for t in ts:
        ax.annotate(f"T={float(t):g}", (sweep[t]["nll_gen"], sweep[t]["nll_oracle"]), fontsize=7,
                    xytext=(4, 2), textcoords="offset points")
    for name, marker in (("mle_pretrain", "x"), ("mle", "s"), ("seqgan", "^"), ("gumbel", "D"),
                         ("dense", "v")):
        r = results[name]
        label = "MLE pretraining (the GANs' start)" if name == "mle_pretrain" else f"{name} (T=1)"
        ax.scatter([r["nll_gen"]], [r["nll_oracle"]], marker=marker, s=60, label=label, zorder=3)
    ax.set_xlabel("NLL-gen (nats/token, lower = covers the data)")
    ax.set_ylabel("NLL-oracle (nats/token, lower = samples the oracle likes)")
    ax.set_title("Oracle task: lower left is better")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def table(results: dict) -> str:
    mle = results["mle"]
    rows = ["| model | steps | minutes | NLL-oracle | NLL-gen | BLEU-2 | BLEU-3 | BLEU-4 | BLEU-5 "
            "| self-BLEU-4 | NLL-oracle vs MLE | NLL-gen vs MLE |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in ["mle_pretrain", "mle", *GANS]:
        r = results[name]
        rows.append(f"| {name} | {r['steps']} | {r['minutes']:.1f} | {r['nll_oracle']:.3f} | "
                    f"{r['nll_gen']:.3f} | {r['bleu2']:.3f} | {r['bleu3']:.3f} | {r['bleu4']:.3f} | "
                    f"{r['bleu5']:.3f} | {r['self_bleu4']:.3f} | "
                    f"{r['nll_oracle'] - mle['nll_oracle']:+.3f} | {r['nll_gen'] - mle['nll_gen']:+.3f} |")
    sweep = results["mle_temperatures"]
    rows += ["", "| MLE temperature | " + " | ".join(f"{float(t):g}" for t in sweep) + " |",
             "|---|" + "---|" * len(sweep),
             "| NLL-oracle | " + " | ".join(f"{v['nll_oracle']:.3f}" for v in sweep.values()) + " |",
             "| NLL-gen | " + " | ".join(f"{v['nll_gen']:.3f}" for v in sweep.values()) + " |"]
    if "style" in results:
        s = results["style"]
        rows += ["", f"Style transfer on style_synth ({s['minutes']:.1f} min):", "",
                 "| outputs | accuracy | exact match | BLEU-4 to gold | BLEU-4 to source | content F1 |",
                 "|---|---|---|---|---|---|"]
        for name in ("model", "copy", "rule"):
            v = s[name]
            rows.append(f"| {name} | {v['accuracy']:.1f} | {v['exact_match']:.1f} | {v['bleu_gold']:.1f} | "
                        f"{v['bleu_source']:.1f} | {v['content_f1']:.1f} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/bench_sequences")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the script in a minute")
    p.add_argument("--mle-extra", type=int, default=250,
                   help="MLE steps after the shared pretraining (the longest GAN stage of the presets)")
    p.add_argument("--skip-style", action="store_true")
    p.add_argument("--replot", action="store_true", help="redraw the plot and table of --out")
    args = p.parse_args()
    out = Path(args.out)
    if args.replot:
        results = json.loads((out / "results.json").read_text())
        plot(results, out / "nll_plot.png")
        (out / "table.md").write_text(table(results))
        print(table(results))
        return
    if out.exists():
        sys.exit(f"{out} exists; choose another --out")
    torch.set_num_threads(1)  # the presets' choice: small LSTMs run faster on one thread
    results = oracle_benchmark(out, args.quick, args.mle_extra)
    if not args.skip_style:
        results["style"] = style_benchmark(out, args.quick)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "nll_plot.png")
    (out / "table.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
