"""Scores as a person reads them: name, value, how it was measured, which way is better.

    fid_digits  11.4  (digit FID; digit features; 10,000 generated vs 4,500 real; real vs real 0.9; lower is better)

Each output key is looked up in :data:`GLOSSARY` by its full name, then by its name before a
``/`` (``intra_fid/zero`` is an ``intra_fid``), then by its longest listed prefix
(``nll_iwae_nats_continuous`` is an ``nll_``). ``gankit eval --explain`` prints the glossary.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

from gankit.metrics.protocol import Protocol

HIGHER, LOWER, NEITHER = "higher is better", "lower is better", ""


class Entry(NamedTuple):
    label: str
    better: str
    meaning: str


GLOSSARY: dict[str, Entry] = {
    "fid": Entry("FID", LOWER, "Frechet distance between Gaussians fitted to the features of "
                 "generated and real items, in Inception-v3's features (the published FID) for "
                 "images; 0 for identical statistics"),
    "fid_digits": Entry("digit FID", LOWER, "the same distance in the features of "
                        "gankit's digit classifier (28x28 digits, --extractor digits): not "
                        "comparable with Inception FID"),
    "kid": Entry("KID", LOWER, "kernel (polynomial) MMD between generated and real features, "
                 "averaged over random subsets; unbiased, so it can dip below 0"),
    "is": Entry("Inception Score", HIGHER, "exp E[KL(p(y|x) || p(y))] under Inception's own "
                "classifier: confident and varied classes"),
    "classifier_score": Entry("classifier score", HIGHER, "the Inception Score's formula under "
                              "another classifier; not comparable with published Inception Scores"),
    "precision": Entry("precision", HIGHER, "share of generated items inside the real data's "
                       "k-nearest-neighbour manifold (quality)"),
    "recall": Entry("recall", HIGHER, "share of real items inside the generated manifold (coverage)"),
    "density": Entry("density", HIGHER, "how many real neighbourhoods hold each generated item, "
                     "scaled so that real data scores about 1"),
    "coverage": Entry("coverage", HIGHER, "share of real items with a generated item in their neighbourhood"),
    "confidence": Entry("classifier confidence", HIGHER, "mean top-class probability of the samples"),
    "readable": Entry("share read", HIGHER, "share of samples whose largest class probability "
                      "under the classifier (the digit classifier on digits) is at least 0.9"),
    "readable_real": Entry("share of real items read", NEITHER, "the same on the real data: "
                           "readable's ceiling"),
    "entropy": Entry("per-sample class entropy", LOWER, "mean entropy of p(y|x) in nats"),
    "diversity": Entry("class diversity", HIGHER, "entropy of the mean class distribution, in "
                       "nats (at most diversity_max)"),
    "diversity_max": Entry("largest class diversity", NEITHER, "log(number of classes)"),
    "within_class_diversity": Entry("within-class diversity", HIGHER, "mean pairwise feature "
                                    "distance of a class's samples over that of its real items, "
                                    "averaged over classes (real = 1; one repeated glyph = 0)"),
    "within_class_diversity_min": Entry("lowest within-class diversity", HIGHER, "the same for "
                                        "the least varied class"),
    "modes": Entry("modes", HIGHER, "classes (or mixture modes) that received samples"),
    "mode_kl": Entry("mode KL", LOWER, "KL(mode histogram || uniform): 0 when modes are equally used"),
    "modes_fair": Entry("modes with a fair share", HIGHER, "mixture modes that received at least "
                        "a quarter of their fair share (n / K) of the samples"),
    "high_quality": Entry("high-quality share", HIGHER, "share of toy samples within 3 standard "
                          "deviations of a mode"),
    "within_1std": Entry("share within 1 std", HIGHER, "share of toy samples within 1 standard "
                         "deviation of their nearest mode (tight around the modes)"),
    "beyond_10std": Entry("share beyond 10 std", LOWER, "share of toy samples farther than 10 "
                          "standard deviations from every mode (off the data)"),
    "nn_min": Entry("closest training distance", HIGHER, "smallest RMS pixel distance from a "
                    "sample to a training image; 0 means a copy"),
    "nn_median": Entry("median training distance", HIGHER, "median RMS distance to the nearest training image"),
    "near_copies": Entry("near copies", LOWER, "samples much closer to one training image than to the others"),
    "near_copy_fraction": Entry("near-copy share", LOWER, "near copies over samples"),
    "afd": Entry("face detection rate", HIGHER, "share of samples in which the anime face detector "
                 "finds a face, each resized to the protocol size (128 px); read it beside afd_real "
                 "and FID: a collapsed generator can score 1.0"),
    "afd_real": Entry("face detection rate on real images", NEITHER, "AFD's ceiling: the same "
                      "detector and protocol on the real images"),
    "class_accuracy": Entry("class accuracy", HIGHER, "share of samples the classifier assigns to "
                            "the class they were asked for"),
    "intra_fid": Entry("intra-class FID", LOWER, "FID between samples and real items of each class, "
                       "averaged over classes"),
    "l1": Entry("L1", LOWER, "mean absolute difference of translation and target, on [-1, 1]"),
    "psnr": Entry("PSNR (dB)", HIGHER, "peak signal-to-noise ratio of translation vs target"),
    "ssim": Entry("SSIM", HIGHER, "structural similarity of translation and target (1 = equal)"),
    "cycle_l1": Entry("cycle L1", LOWER, "mean |x - F(G(x))|: how well a round trip restores the input"),
    "keep_class": Entry("kept class", HIGHER, "share of (translated) images the classifier gives their source's class"),
    "nll_gen": Entry("NLL-gen", LOWER, "the model's negative log-likelihood of the test sentences, nats per sentence"),
    "nll_oracle": Entry("NLL-oracle", LOWER, "the oracle's negative log-likelihood of the samples, nats per sentence"),
    "bleu": Entry("BLEU", HIGHER, "n-gram overlap of samples with the test sentences (quality)"),
    "self_bleu": Entry("self-BLEU", LOWER, "n-gram overlap of samples with each other (lower = more varied)"),
    "nll_": Entry("held-out NLL", LOWER, "negative log-likelihood of held-out data, in the unit in the key"),
    "vae_kl_nats": Entry("KL(q(z|x) || p(z))", NEITHER, "nats per item; the rate of the VAE's code"),
    "vae_active_units": Entry("active latent units", NEITHER, "latent dimensions whose posterior mean varies"),
    "accuracy": Entry("style accuracy", HIGHER, "share of outputs in the asked style, %"),
    "exact_match": Entry("exact match", HIGHER, "share of outputs equal to the gold answer, %"),
    "bleu_gold": Entry("BLEU to gold", HIGHER, "BLEU of the outputs against the gold answers"),
    "bleu_source": Entry("BLEU to source", NEITHER, "BLEU of the outputs against their inputs (content kept, or copied)"),
    "content_f1": Entry("content F1", HIGHER, "F1 of the content words kept from the source, %"),
}
# the spread of a score is shown with it, not ranked
SPREAD_SUFFIX = "_std"


def entry(key: str) -> Entry | None:
    """The glossary entry of an output key (see the module docstring), or None."""
    if key in GLOSSARY:
        return GLOSSARY[key]
    base = key.split("/", 1)[0]
    if base in GLOSSARY:
        return GLOSSARY[base]
    stem = base.rstrip("0123456789")  # bleu4, self_bleu3
    if stem in GLOSSARY:
        return GLOSSARY[stem]
    prefixes = [p for p in GLOSSARY if p.endswith("_") and key.startswith(p)]
    return GLOSSARY[max(prefixes, key=len)] if prefixes else None


def format_value(value: float) -> str:
    """A value as printed: integers whole, floats to 6 significant digits."""
    if isinstance(value, int):
        return str(value)
    return str(value) if math.isinf(value) or math.isnan(value) else f"{value:.6g}"


def format_mean_std(mean: float, std: float | None = None, significant: int = 2) -> str:
    """A score to the precision its spread supports: the std to ``significant`` digits and the
    mean to the same decimal place (``0.0067 ± 0.0025``, ``26.70 ± 0.10``, ``12340 ± 680``);
    a lone value (no std or a non-finite one) to 4 significant digits, with ``± 0`` where the
    runs agree exactly. The one format of reports, ``gankit runs`` and the benchmark tables."""
    if not math.isfinite(mean):
        return str(mean)
    if std is None or not math.isfinite(std) or std <= 0:
        return f"{mean:.4g}" + (" ± 0" if std == 0 else "")
    last = math.floor(math.log10(std)) - (significant - 1)  # power of ten of std's last digit
    if last < 0:
        return f"{mean:.{-last}f} ± {std:.{-last}f}"
    step = 10 ** last
    return f"{round(mean / step) * step:.0f} ± {round(std / step) * step:.0f}"


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


DIGIT_EXTRACTOR = "digit-cnn"
EXTRACTORS = {DIGIT_EXTRACTOR: "digit features", "inception-v3-tf": "Inception features",
              "identity": "raw values"}


def protocol_words(protocol: Protocol) -> list[str]:
    """How a score was measured, in a few words: features, counts, unit."""
    words = []
    ext = protocol.get("extractor")
    if ext:
        words.append(EXTRACTORS.get(ext, f"{ext} features"))
    if "classifier" in protocol:
        words.append(f"classifier {protocol['classifier']}")
    fake, real = protocol.get("n_fake"), protocol.get("n_real")
    if protocol.get("unit"):  # a likelihood: its items, data variant and unit
        return words + [f"{_count(protocol.get('n', '?'))} held-out items",
                        str(protocol.get("data", "")), str(protocol["unit"])]
    if fake is not None and real is not None:
        words.append(f"{_count(fake)} generated vs {_count(real)} real")
    elif fake is not None:
        words.append(f"{_count(fake)} generated")
    elif protocol.get("n") is not None:
        words.append(f"{_count(protocol['n'])} {protocol.get('data', 'items')}")
    return words


def describe(key: str, value: float, protocol: Protocol,
             reference: tuple[str, float] | None = None, width: int = 0) -> str:
    """One line: ``key  value  (label; protocol; reference; which way is better)``."""
    found = entry(key[: -len(SPREAD_SUFFIX)] if key.endswith(SPREAD_SUFFIX) else key)
    parts = []
    if found is not None:
        parts.append(found.label + (" spread (std)" if key.endswith(SPREAD_SUFFIX) else ""))
    parts += protocol_words(protocol)
    if reference is not None:
        label, ref_value = reference  # the label may place the value: "real vs real {} at ..."
        shown = f"{ref_value:.3g}"
        parts.append(label.format(shown) if "{}" in label else f"{label} {shown}")
    if found is not None and found.better and not key.endswith(SPREAD_SUFFIX):
        parts.append(found.better)
    note = f"  ({'; '.join(parts)})" if parts else ""
    return f"{key:<{width}}  {format_value(value)}{note}"


def explain() -> str:
    """The glossary as text (``gankit eval --explain``)."""
    width = max(len(k) for k in GLOSSARY)
    lines = ["Metrics of gankit eval (keys as printed and in metrics.jsonl):", ""]
    for key, e in GLOSSARY.items():
        shown = f"{key}*" if key.endswith("_") else key
        better = f" [{e.better}]" if e.better else ""
        lines.append(f"{shown:<{width + 1}}  {e.label}{better}: {e.meaning}")
    lines += ["", "Keys ending in _std are the spread of the score before them. Each line also "
              "says how the score was measured (features, generated vs real counts);",
              "compare two scores only when that matches. Real reference items are a seeded "
              "random subset, stratified by class (--n-real), recorded in metrics.jsonl."]
    return "\n".join(lines)


def upgrade_record(record: dict[str, Any]) -> dict[str, Any]:
    """A ``metrics.jsonl`` record with its keys as this version names them. Before FID was
    named by its features, an FID in the digit classifier's features was stored as ``fid``;
    its stored protocol says which features it was measured in, and ``fid`` measured in
    ``digit-cnn`` features is read as ``fid_digits``. A record without a protocol says
    nothing about its features and is left as it is."""
    protocol = (record.get("protocol") or {}).get("fid")
    if "metrics/fid" not in record or not isinstance(protocol, dict):
        return record
    if protocol.get("extractor") != DIGIT_EXTRACTOR:
        return record
    out = {("metrics/fid_digits" if k == "metrics/fid" else k): v for k, v in record.items()}
    protocols = {("fid_digits" if k == "fid" else k): v for k, v in record["protocol"].items()}
    out["protocol"] = {**protocols, "fid_digits": {**protocol, "metric": "fid_digits"}}
    return out
