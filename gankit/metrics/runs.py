"""What ``gankit eval RUN`` measures for each model kind, beside the sample metrics.

* unconditional GANs, GLO, VAEs and flows: the sample metrics (FID, KID, ... on generated
  samples) of :mod:`gankit.metrics.compute`; VAEs and flows add the held-out likelihood in
  its unit when the run held data out;
* conditional GANs (``data.condition=label`` or ``text``): also class accuracy, intra-class
  FID and within-class diversity (a text-conditioned GAN is asked for each class by its text);
* pix2pix: L1, PSNR and SSIM of translated held-out pairs (no samples to generate: its only
  input is the image it translates);
* CycleGAN: cycle error, FID in each target domain and, on the built-in digits, the share of
  translations that keep their class;
* sequence models (mle, seqgan, gumbel, dense): NLL-oracle, NLL-gen, BLEU and self-BLEU;
* style transfer: accuracy, BLEU and content F1 beside the copy and rule baselines.

Every score carries a protocol (what was measured, on which data, how many items), as the
sample metrics do.
"""
from __future__ import annotations

import argparse
from typing import Callable

import torch

from gankit.errors import ConfigError, DataError
from gankit.metrics.compute import Scores
from gankit.registry import Registry

SEQUENCE_KINDS = ("mle", "seqgan", "gumbel", "dense")

RunScores = Callable[..., Scores]  # (run, args, device) -> Scores
# The model kinds measured by their own metrics instead of the sample metrics.
RUN_METRICS: Registry[RunScores] = Registry("model kind with its own metrics")


def run_metrics(*kinds: str) -> Callable[[RunScores], RunScores]:
    """Decorator: ``scores(run, args, device)`` measures runs of these model kinds (in place
    of the sample metrics, which need a model that draws samples from noise)."""
    def deco(scores: RunScores) -> RunScores:
        for kind in kinds:
            RUN_METRICS.add(kind, scores)
        return scores

    return deco


def has_sample_metrics(run) -> bool:
    """Whether FID and the other sample metrics apply (the model draws samples from noise)."""
    return run.cfg.model.kind not in RUN_METRICS


def _add(scores: Scores, values: dict[str, float], **protocol) -> None:
    for key, value in values.items():
        scores.add({key: float(value)}, protocol)


def _extractor(run, args: argparse.Namespace, device: str):
    from gankit.metrics.extractors import build_extractor

    image_info = type(run.info)("image", run.info.shape, name=run.info.name)
    return build_extractor(args.extractor or run.cfg.eval.extractor, image_info, device, args.inception)


@run_metrics("pix2pix")
def pix2pix_run_scores(run, args: argparse.Namespace, device: str) -> Scores:
    """pix2pix: L1/PSNR/SSIM of the translated held-out pairs."""
    from gankit.data import held_out_tensors
    from gankit.metrics.conditional import pix2pix_scores

    scores = Scores()
    test = held_out_tensors(run.cfg.data, run.cfg.train.seed)
    a, b = test["a"].to(device), test["b"].to(device)
    _add(scores, pix2pix_scores(run.model, a, b, not args.no_ema), metric="paired",
         data="held-out pairs", n=len(a), range="[0, 1] (L1 on [-1, 1])")
    return scores


@run_metrics("cyclegan")
def cyclegan_run_scores(run, args: argparse.Namespace, device: str) -> Scores:
    """CycleGAN: cycle error, FID in each target domain and, with labels, the kept class."""
    from gankit.data.paired import unpaired_held_out
    from gankit.metrics.conditional import cyclegan_scores

    scores = Scores()
    test = unpaired_held_out(run.cfg.data, run.info.shape[0])
    extractor = _extractor(run, args, device)
    values = cyclegan_scores(run.model, test["a"].to(device), test["b"].to(device), extractor,
                             test.get("y"), not args.no_ema)
    _add(scores, values, metric="cyclegan", data="held-out images", n=len(test["a"]),
         **extractor.protocol())
    return scores


@run_metrics("style")
def style_scores(run, args: argparse.Namespace, device: str = "cpu") -> Scores:
    """Style transfer: accuracy, BLEU and content F1 beside the copy and rule baselines."""
    from gankit.data.text import load_text_data
    from gankit.metrics.text import evaluate_style

    data = load_text_data(run.cfg.data)
    if data.style is None:
        raise DataError("style scores need a built-in style task (its rule gives the gold answer)")
    by_name = evaluate_style(lambda x, to: run.model.translate(x, to, not args.no_ema),
                             data.test, data.style, data.vocab)
    scores = Scores()
    for name, values in by_name.items():
        _add(scores, {f"{k}/{name}" if name != "model" else k: v for k, v in values.items()},
             metric="style", data="test sentences", n=len(data.test["x"]), translator=name)
    return scores


@run_metrics(*SEQUENCE_KINDS)
def sequence_scores(run, args: argparse.Namespace, device: str = "cpu") -> Scores:
    """NLL-oracle, NLL-gen, BLEU-n and self-BLEU-n of a sequence run."""
    from gankit.data.text import load_text_data
    from gankit.metrics.text import evaluate_text_run

    data = load_text_data(run.cfg.data)
    n = args.n if args.n_given else 2000
    values = evaluate_text_run(run, n=n, seed=args.seed, bleu_n=min(n, 500), use_ema=not args.no_ema,
                               data=data)
    scores = Scores()
    _add(scores, values, metric="text", data="test split", n_fake=n, n_real=len(data.test["x"]),
         bleu_samples=min(n, 500))
    return scores


def conditional_scores(run, args: argparse.Namespace, device: str) -> tuple[Scores, str]:
    """Class accuracy and intra-class FID of a conditional GAN, or a note saying why not."""
    from gankit.data import load_tensors
    from gankit.metrics import conditional

    scores = Scores()
    if run.model.space is None:  # the model declares its conditions (label or text) by its space
        return scores, ""  # text conditions ask for each class by its text (its tags)
    tensors, _, _ = load_tensors(run.cfg.data, run.cfg.train.seed)
    if tensors is None:
        return scores, "class accuracy needs the data in memory (data.resident=yes)"
    extractor = _extractor(run, args, device)
    per_class = max(2, args.n // max(run.model.space.num_classes, 1))
    try:
        values = conditional.conditional_scores(run.model, tensors["x"], tensors["y"], extractor,
                                                per_class, args.seed, not args.no_ema)
    except ConfigError as e:  # e.g. a classifier of other classes: the sample metrics still stand
        return scores, f"no class accuracy: {e}"
    _add(scores, values, metric="conditional", n_fake=per_class * run.model.space.num_classes,
         n_real=len(tensors["x"]), per_class=per_class, **extractor.protocol())
    with torch.no_grad():  # the classifier's accuracy on real data: the ceiling to compare with
        probs = conditional.extract(extractor, tensors["x"])[1]
    if probs is not None:
        scores.reference["class_accuracy"] = ("on real data", conditional.class_agreement(probs, tensors["y"]))
    return scores, ""


def evaluate_run(run, n_per_class: int = 500, seed: int = 0, device: str = "cpu") -> dict[str, float]:
    """The scores of a loaded run (:func:`gankit.api.load_run`) beyond its sample metrics,
    as ``gankit eval`` measures them: its kind's :data:`RUN_METRICS` entry (pix2pix and
    CycleGAN on the held-out part, sequence and style runs), else a conditional model's class
    accuracy and intra-class FID on its training images (``n_per_class`` samples a class).
    ConfigError when the run has neither."""
    space = run.model.space
    args = argparse.Namespace(extractor=None, inception=None, no_ema=False, seed=seed, n_given=True,
                              n=n_per_class * (space.num_classes if space is not None else 1))
    if not has_sample_metrics(run):
        return dict(RUN_METRICS.get(run.cfg.model.kind)(run, args, device))
    scores, note = conditional_scores(run, args, device)
    if not scores:
        raise ConfigError(note or f"no scores beyond the sample metrics for a {run.cfg.model.kind} "
                          f"run with data.condition={run.cfg.data.condition}; use gankit eval")
    return dict(scores)
