"""``compute_metrics``: every metric from one pass over the samples and one over the data.

Generated samples and real data arrive as iterables of batches and are read once each;
only features (or class probabilities) are kept, plus at most ``memo_max`` samples for the
memorisation check. Reference statistics of the real data come from ``stats`` (a
``--stats`` file), from the on-disk cache, or from a pass over ``real``, in that order.

Metric names and what they report:

=============  ==============================================================
fid            ``fid`` in Inception features (raw values for vectors, a TorchScript model's
               features when given); ``fid_digits`` in the digit classifier's features
kid            ``kid``, ``kid_std``
is             ``is``, ``is_std`` with an Inception classifier (``--inception`` weights that
               return logits); with any other classifier (the digit CNN, a TorchScript
               model) ``classifier_score``, ``classifier_score_std``: the same formula,
               not comparable with published Inception Scores
pr             ``precision``, ``recall``
dc             ``density``, ``coverage``
quality        ``confidence``, ``entropy``, ``diversity``, ``diversity_max``
readable       ``readable``: the share of samples the classifier reads with p >= 0.9, and
               ``readable_real``, the real images' share (its ceiling) when they are given
modes          ``modes``, ``mode_kl`` (image data, classifier modes)
memorisation   ``nn_min``, ``nn_median``, ``near_copies``, ``near_copy_fraction``
afd            ``afd``, and ``afd_real`` (the detector's rate on the real data: AFD's
               ceiling) when the real data is given
toy            ``modes``, ``high_quality``, ``mode_kl`` (ring8 / grid25 vectors)
=============  ==============================================================
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from torch import Tensor

from gankit import files
from gankit.data.info import DataInfo
from gankit.errors import ConfigError, DataError
from gankit.metrics import anime, classifier, frechet, mmd, nearest, prdc, toy
from gankit.metrics.accumulate import (FEATURE_STATS, FEATURES, MEMO_SAMPLES, PROBS, SAMPLES,
                                       Accumulator, Statistic)
from gankit.metrics.cache import StatsCache
from gankit.metrics.extractors import Extractor, InceptionExtractor, TorchScriptExtractor, build_extractor
from gankit.metrics.protocol import UNKNOWN, Protocol, check_same_protocol, is_unknown
from gankit.metrics.stats import FeatureStats, check_comparable
from gankit.registry import Registry, closest

ALIASES = {"memorization": ["memorisation"], "prdc": ["pr", "dc"], "precision": ["pr"],
           "recall": ["pr"], "density": ["dc"], "coverage": ["dc"], "inception_score": ["is"]}


@dataclass
class MetricOptions:
    """Settings of the individual metrics (each is recorded in the score's protocol)."""

    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    pr_k: int = 3
    dc_k: int = 5
    memo_max: int = 1000  # generated samples compared with every training image
    memo_neighbours: int = 50
    memo_ratio: float = 1 / 3
    seed: int = 0


class Scores(dict):
    """``{name: value}``, with ``protocol[name]``: how each value was measured."""

    def __init__(self) -> None:
        super().__init__()
        self.protocol: dict[str, Protocol] = {}
        # what to read a score against: {key: (label, value)}, e.g. ("real vs real {} at
        # 500 vs 1,000", 0.9) for an FID, ("on real data", 0.998) for class accuracy
        self.reference: dict[str, tuple[str, float]] = {}
        self.fake_stats: FeatureStats | None = None  # the generated side's feature statistics

    def add(self, values: dict[str, float], protocol: Protocol) -> None:
        for key, value in values.items():
            self[key] = value
            self.protocol[key] = dict(protocol)

    def protocols(self) -> dict[str, Protocol]:
        """One protocol per metric group (the keys of a group share it), for metrics.jsonl."""
        out: dict[str, Protocol] = {}
        for key, protocol in self.protocol.items():
            out.setdefault(protocol.get("metric", key), protocol)
        return out


def likelihood_scores(model, batches, *args, **kwargs) -> Scores:
    """The held-out NLL of a model with a likelihood (VAE, flow) as :class:`Scores`: its
    ``measure_likelihood(batches, ...)`` groups of ``(values, protocol)``, each key naming its
    unit and data variant. Extra arguments go to the model (the VAE's ``k``, ``conditions``,
    ``use_ema``)."""
    scores = Scores()
    for values, protocol in model.measure_likelihood(batches, *args, **kwargs):
        scores.add(values, protocol)
    return scores


def compare_scores(a: Scores, b: Scores) -> dict[str, tuple[float, float]]:
    """``{name: (a, b)}`` for the scores both hold; ProtocolMismatch if any was measured
    differently (e.g. FID from 10k samples against FID from 50k)."""
    common = [k for k in a if k in b]
    for key in common:
        check_same_protocol(a.protocol.get(key, {}), b.protocol.get(key, {}), f"'{key}' scores")
    return {k: (a[k], b[k]) for k in common}


def resolve_names(names: Iterable[str], info: DataInfo) -> list[str]:
    """Canonical metric names, in order and without repeats; ConfigError for unknown ones."""
    allowed = metric_names("image" if info.is_image else "vector")
    out: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if not info.is_image and name == "modes":
            name = "toy"  # on the toy mixtures, mode counting is the toy metric
        for canon in ALIASES.get(name, [name]):
            if canon not in allowed:
                kind = "image" if info.is_image else "vector"
                raise ConfigError(f"unknown metric '{raw}' for {kind} data"
                                  f"{closest(name, list(allowed))}; known: {', '.join(allowed)}")
            if canon not in out:
                out.append(canon)
    if not out:
        raise ConfigError("no metrics requested; name some, e.g. --metrics fid,kid")
    return out


@dataclass
class _Side:
    """What one pass over a set of samples accumulated: each declared statistic's result
    (``side["feature_stats"]``, ``side["probs"]``, ...), the item count and the protocol."""

    protocol: Protocol = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    n: int = 0
    item_shape: tuple[int, ...] = ()
    accumulators: dict[str, Accumulator] = field(default_factory=dict, repr=False)

    def __getitem__(self, name: str) -> Any:
        if name not in self.values:
            raise KeyError(f"statistic '{name}' was not accumulated on this side; declare it in "
                           "the metric's @metric(fake=[...], real=[...])")
        return self.values[name]

    def __contains__(self, name: object) -> bool:
        return name in self.values

    @property
    def stats(self) -> FeatureStats:
        """The feature statistics with this side's protocol (empty, dimension 0, when the
        metrics declared none: the protocol still says how the side was measured)."""
        stats = self.values.get(FEATURE_STATS.name)
        stats = stats if stats is not None else FeatureStats()
        stats.protocol = self.protocol
        return stats


@dataclass
class _Plan:
    """The statistics each pass keeps (the union of the requested metrics' declarations),
    the extractor they read and the resources they loaded."""

    names: list[str]
    extractor: Extractor | None
    opts: MetricOptions
    fake_needs: tuple[Statistic, ...] = ()
    real_needs: tuple[Statistic, ...] = ()
    resources: dict[str, Any] = field(default_factory=dict)

    def resource(self, stat: Statistic) -> Any:
        """What ``stat.prepare()`` loads (AFD's detector), loaded once per evaluation."""
        if stat.name not in self.resources:
            self.resources[stat.name] = stat.prepare()
        return self.resources[stat.name]


def _union(groups: Iterable[Iterable[Statistic]]) -> tuple[Statistic, ...]:
    """The statistics of ``groups`` once each, in order; two different statistics of one name
    are a programming error (their cache entries would answer for each other)."""
    out: dict[str, Statistic] = {}
    for group in groups:
        for stat in group:
            if out.setdefault(stat.name, stat) is not stat:
                raise ValueError(f"two different statistics are named '{stat.name}'")
    return tuple(out.values())


def _make_plan(names: list[str], info: DataInfo, extractor: str, device: str | torch.device,
               inception_path: str | Path | None, opts: MetricOptions) -> _Plan:
    metrics = [METRICS.get(n) for n in names]
    fake_needs, real_needs = _union(m.fake for m in metrics), _union(m.real for m in metrics)
    needs_probs = {m.name for m in metrics if any(s.reads == "probs" for s in m.fake + m.real)}
    ext = None
    if any(s.reads != "items" for s in fake_needs + real_needs):
        ext = build_extractor(extractor, info, device, inception_path)
        if needs_probs and isinstance(ext, InceptionExtractor):
            ext.probe()  # the weights show whether they have a classifier head only when run
        # A TorchScript model shows whether it gives probabilities only when it runs.
        if needs_probs and ext.num_classes == 0 and not isinstance(ext, TorchScriptExtractor):
            raise ConfigError(f"metrics {', '.join(sorted(needs_probs))} need class "
                              f"probabilities, but the '{ext.name}' extractor gives features only "
                              "(the FID Inception has no classifier head); use --extractor digits "
                              "(28x28 digits), a TorchScript classifier, or --inception weights "
                              "that return (features, logits) for the Inception Score")
    plan = _Plan(names, ext, opts, fake_needs, real_needs)
    for stat in fake_needs + real_needs:
        if stat.prepare is not None:
            plan.resource(stat)
    return plan


def _base_protocol(ext: Extractor | None, shape: tuple[int, ...]) -> Protocol:
    protocol = ext.protocol() if ext is not None else {}
    protocol["item_shape"] = "x".join(str(s) for s in shape)
    return protocol


def _scan(batches: Iterable[Tensor], plan: _Plan, data: str, needs: tuple[Statistic, ...],
          fake: _Side | None = None) -> _Side:
    """One pass over ``batches``, accumulating the statistics ``needs`` (``fake``: the
    generated side, for statistics of the real side that compare with it)."""
    side = _Side(accumulators={s.name: s.start(plan, fake) for s in needs})
    extract = plan.extractor is not None and any(s.reads != "items" for s in needs)
    for x in batches:
        if not isinstance(x, Tensor) or x.ndim < 2 or x.shape[0] == 0:
            raise DataError(f"batches must be non-empty tensors [N, ...], got {type(x).__name__}")
        x = x.detach().cpu().float()
        if not side.item_shape:
            side.item_shape = tuple(x.shape[1:])
            side.protocol = _base_protocol(plan.extractor, side.item_shape)
        elif tuple(x.shape[1:]) != side.item_shape:
            raise DataError(f"items of shape {tuple(x.shape[1:])} and {side.item_shape} in one set")
        inputs = {"items": x}
        if extract:
            out = plan.extractor(x)
            inputs.update(features=out.features, probs=out.probs)
        for stat in needs:
            if inputs.get(stat.reads) is not None:  # an extractor may give no features or probs
                side.accumulators[stat.name].update(inputs[stat.reads])
        side.n += x.shape[0]
    if side.n == 0:
        raise DataError(f"no {data} samples were given")
    side.protocol.update(data=data, n=side.n)
    side.values = {name: acc.result() for name, acc in side.accumulators.items()}
    return side


def compute_metrics(names: Iterable[str], fake: Iterable[Tensor], real: Iterable[Tensor] | None,
                    info: DataInfo, *, extractor: str = "auto", cache_dir: str | Path | None = None,
                    out_dir: str | Path | None = None, stats: FeatureStats | None = None,
                    real_n: int | None = None, device: str | torch.device = "cpu",
                    inception_path: str | Path | None = None,
                    options: MetricOptions | None = None, use_cache: bool = True,
                    reference: Protocol | None = None,
                    fake_real: tuple[int, Protocol] | None = None) -> Scores:
    """Evaluate ``names`` on generated batches ``fake`` against the data's batches ``real``.

    ``info`` describes the data (its name keys the statistics cache; its shape picks the
    ``auto`` extractor). ``stats`` replaces the real pass for FID. ``real_n`` is how many
    real items ``real`` yields at most (part of the cache key). Pictures (toy scatter,
    closest pairs) are written to ``out_dir`` when given. ``reference`` says which real
    items ``real`` yields (``subset``: how they were chosen, ``data_id``: what identifies the
    data beyond its name); it keys the cache and goes into every score's protocol.
    ``fake_real = (n, reference)`` says ``fake`` is real data too (the first set of a
    real-vs-real score), identified as ``real_n`` and ``reference`` identify ``real``: its
    statistics are then read from and written to the cache as well.
    Each pass keeps what the metrics declare (:func:`metric`'s ``fake`` and ``real``).
    Returns :class:`Scores`.
    """
    names = resolve_names(names, info)
    opts = options or MetricOptions()
    plan = _make_plan(names, info, extractor, device, inception_path, opts)
    cache = StatsCache(cache_dir) if use_cache else None
    if fake_real is not None:
        fake_side = _Reference(plan, info, fake, None, fake_real[0], cache, fake_real[1],
                               needs=plan.fake_needs).side()
    else:
        fake_side = _scan(fake, plan, "generated", plan.fake_needs)
    ref = _Reference(plan, info, real, stats, real_n, cache, reference, fake=fake_side)
    scores = Scores()
    for name in names:
        values, protocol = METRICS.get(name).compute(fake_side, ref, plan, info, Path(out_dir) if out_dir else None)
        scores.add(values, protocol)
    if fake_side.stats.dim:
        scores.fake_stats = fake_side.stats
    return scores


class _Reference:
    """The real side, read at most once: the statistics the metrics declare over real data
    (``needs``, by default the plan's ``real_needs``), each from its cache entry when every
    one of them has one, else from one pass over ``real`` (which then fills the cache)."""

    def __init__(self, plan: _Plan, info: DataInfo, real: Iterable[Tensor] | None,
                 stats: FeatureStats | None, real_n: int | None, cache: StatsCache | None,
                 reference: Protocol | None = None, needs: tuple[Statistic, ...] | None = None,
                 fake: _Side | None = None):
        self.plan, self.info, self.real, self.cache = plan, info, real, cache
        self.reference = dict(reference or {})
        self.given_stats = stats
        self.real_n = real_n if real_n is not None else (info.size or "all")
        self.needs = plan.real_needs if needs is None else needs
        self.fake = fake  # the generated side, which some real statistics compare with
        self._side: _Side | None = None

    def _key(self, stat: Statistic) -> Protocol:
        ext = self.plan.extractor if stat.reads != "items" else None
        key = _base_protocol(ext, tuple(self.info.shape))
        key.update(data=self.info.name, n=self.real_n, **self.reference, **stat.cache_key(self.plan))
        return key

    def _use_cache(self) -> bool:
        return self.cache is not None and bool(self.info.name)

    def side(self) -> _Side:
        """The real side's statistics (from the cache when possible)."""
        if self._side is None:
            self._side = self._cached() or self._scan()
        return self._side

    def try_side(self) -> _Side | None:
        """The real side when the cache or the real data can give it, else None: for a
        metric whose real side is optional (AFD's ceiling)."""
        if self._side is None:
            self._side = self._cached()
            if self._side is None and self.real is not None:
                self._side = self._scan()
        return self._side

    def _cached(self) -> _Side | None:
        if not self._use_cache() or not self.needs or not all(s.cached for s in self.needs):
            return None
        side = None
        # the entries of extractor statistics carry the extractor's protocol: read one first
        for stat in sorted(self.needs, key=lambda s: s.reads == "items"):
            hit = self.cache.load_arrays(self._key(stat))
            if hit is None:
                return None
            arrays, protocol, n = hit
            if side is None:
                protocol.pop("cache_key", None)
                side = _Side(protocol=protocol, n=n, item_shape=tuple(self.info.shape))
            side.values[stat.name] = stat.load({**arrays, "n": np.int64(n)})
        return side

    def _scan(self) -> _Side:
        if self.real is None:
            raise DataError("these metrics need the real data (or a --stats file for FID alone), "
                            "but none was given")
        side = _scan(self.real, self.plan, self.info.name or "real", self.needs, self.fake)
        self.real = None  # an iterable may not be readable twice
        side.protocol.update(self.reference)
        if self._use_cache() and side.n >= 2:
            for stat in self.needs:
                if stat.cached and side.values.get(stat.name) is not None:
                    try:
                        self.cache.save_arrays(self._key(stat), side.accumulators[stat.name].arrays(),
                                               side.protocol, side.n)
                    except files.WriteError as e:  # a cache: the scores stand without it
                        warnings.warn(f"statistics cache not saved: {e}", stacklevel=2)
        return side

    def stats(self) -> FeatureStats:
        return self.given_stats if self.given_stats is not None else self.side().stats


# ---- the metrics ------------------------------------------------------------------------------
Result = tuple[dict[str, float], Protocol]


@dataclass(frozen=True)
class Metric:
    """A metric: ``compute(fake, ref, plan, info, out) -> (values, protocol)`` and the
    statistics it needs over the generated (``fake``) and the real (``real``) samples."""

    name: str
    compute: Callable[..., Result]
    data: tuple[str, ...]  # the kinds of data it applies to: "image", "vector"
    fake: tuple[Statistic, ...]
    real: tuple[Statistic, ...]
    higher: tuple[str, ...]  # its output keys where a larger value is better


METRICS: Registry[Metric] = Registry("metric")


def metric(name: str, *, data: tuple[str, ...] = ("image",), fake: Iterable[Statistic] = (),
           real: Iterable[Statistic] = (), higher: Iterable[str] = ()) -> Callable:
    """Decorator: register ``compute(fake, ref, plan, info, out)`` as the metric ``name`` (for
    ``--metrics`` and ``eval.metrics``). ``fake`` and ``real`` declare the statistics
    (:mod:`gankit.metrics.accumulate`) the passes accumulate for it over the generated samples
    and over the real data; ``compute`` reads them as ``fake["probs"]`` and
    ``ref.side()["probs"]`` (``ref.try_side()`` where the real side is optional). The
    statistics cache follows from the declaration. Describe each output key in
    :data:`gankit.metrics.describe.GLOSSARY`; ``higher`` names the keys where larger is better."""
    def deco(compute: Callable[..., Result]) -> Callable[..., Result]:
        METRICS.add(name, Metric(name, compute, tuple(data), tuple(fake), tuple(real), tuple(higher)))
        return compute

    return deco


def metric_names(kind: str) -> tuple[str, ...]:
    """The metrics of ``kind`` data ("image" or "vector"), in the order they are registered
    below (the order errors list them in)."""
    return tuple(name for name, m in METRICS.items() if kind in m.data)


class _FaceCount(Accumulator):
    """How many items hold a face the anime face detector finds."""

    def __init__(self, detector: Callable) -> None:
        self.detector, self.count = detector, 0

    def update(self, x: Tensor) -> None:
        self.count += anime.count_faces(x, self.detector)

    def result(self) -> int:
        return self.count

    def arrays(self) -> dict[str, np.ndarray]:
        return {"faces": np.int64(self.count)}


FACES = Statistic("faces", "items", lambda plan, fake: _FaceCount(plan.resource(FACES)),
                  load=lambda arrays: int(arrays["faces"]),
                  key=lambda plan: anime.detector_protocol(plan.resource(FACES)),
                  prepare=lambda: anime.load_detector())


class _Neighbours(Accumulator):
    """The training images nearest to each kept generated sample (never cached: it depends
    on the samples)."""

    def __init__(self, samples: Tensor, neighbours: int) -> None:
        self.tracker = nearest.NearestTracker(samples, neighbours)

    def update(self, x: Tensor) -> None:
        self.tracker.update(x)

    def result(self) -> nearest.NearestTracker:
        return self.tracker


NEIGHBOURS = Statistic("neighbours", "items",
                       lambda plan, fake: _Neighbours(fake[MEMO_SAMPLES.name], plan.opts.memo_neighbours))


def _pair_protocol(metric: str, fake: _Side, real_protocol: Protocol, **params: Any) -> Protocol:
    protocol = {k: v for k, v in fake.protocol.items() if k not in ("data", "n")}
    reference = UNKNOWN if is_unknown(real_protocol) else real_protocol.get("data", UNKNOWN)
    protocol.update(metric=metric, n_fake=fake.n, reference=reference,
                    n_real=real_protocol.get("n", UNKNOWN), **params)
    if "subset" in real_protocol:
        protocol["real_subset"] = real_protocol["subset"]
    return protocol


@metric("toy", data=("vector",), fake=[SAMPLES],
        higher=["modes", "modes_fair", "high_quality", "within_1std"])
def _toy(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    from gankit.data.toy import MIXTURES

    if info.name not in MIXTURES:
        raise DataError(f"toy metrics need one of the mixtures {', '.join(sorted(MIXTURES))}; "
                        f"the data is '{info.name}'")
    samples = fake[SAMPLES.name]
    values = toy.toy_metrics(samples, info.name)
    if out is not None:
        title = (f"{info.name}: {values['modes']} modes ({values['modes_fair']} with a fair share), "
                 f"{values['high_quality']:.1%} high quality, "
                 f"KL {values['kl']:.3f}")
        toy.plot_toy(samples, info.name, out / "toy_scatter.png", title)
    protocol = {"metric": "toy", "mixture": info.name, "hq_stds": toy.HQ_STDS, "n_fake": fake.n}
    protocol["fair_share"] = toy.FAIR_SHARE
    return {"modes": values["modes"], "modes_fair": values["modes_fair"],
            "high_quality": values["high_quality"], "mode_kl": values["kl"],
            "within_1std": values["within_1std"], "beyond_10std": values["beyond_10std"]}, protocol


@metric("fid", data=("image", "vector"), fake=[FEATURE_STATS], real=[FEATURE_STATS])
def _fid(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    real_stats = ref.stats()
    check_comparable(fake.stats, real_stats)
    value = frechet.frechet_distance(fake.stats.mean, fake.stats.cov, real_stats.mean, real_stats.cov)
    key = plan.extractor.fid_key  # named by its features: fid (Inception), fid_digits, ...
    return {key: value}, _pair_protocol(key, fake, real_stats.protocol)


def _real_features(fake: _Side, ref: _Reference) -> Tensor:
    real = ref.side()
    check_comparable(fake.stats, real.stats)
    return real[FEATURES.name]


# the feature metrics read the features themselves, and their statistics for the check
# that both sides were measured alike
FEATURE_ROWS = (FEATURE_STATS, FEATURES)


@metric("kid", data=("image", "vector"), fake=FEATURE_ROWS, real=FEATURE_ROWS)
def _kid(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    o = plan.opts
    mean, std = mmd.kid(fake[FEATURES.name], _real_features(fake, ref), o.kid_subsets,
                        o.kid_subset_size, o.seed)
    return {"kid": mean, "kid_std": std}, _pair_protocol(
        "kid", fake, ref.side().protocol, subsets=o.kid_subsets,
        subset_size=o.kid_subset_size, seed=o.seed)


def _probs(side: _Side, plan: _Plan) -> Tensor:
    probs = side[PROBS.name]
    if probs is None:
        raise ConfigError(f"the '{plan.extractor.name}' extractor returned no class probabilities")
    return probs


def _single_protocol(metric: str, fake: _Side, **params: Any) -> Protocol:
    protocol = {k: v for k, v in fake.protocol.items() if k not in ("data", "n")}
    protocol.update(metric=metric, n_fake=fake.n, **params)
    return protocol


@metric("is", fake=[PROBS], higher=["is", "classifier_score"])
def _is(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    """The Inception Score when the classifier is Inception; under any other classifier the
    same formula is a 'classifier score', named so that it is never read as a published IS."""
    splits = min(plan.opts.is_splits, fake.n)
    probs = _probs(fake, plan)
    mean, std = classifier.inception_score(probs, splits)
    name = "is" if isinstance(plan.extractor, InceptionExtractor) else "classifier_score"
    return {name: mean, f"{name}_std": std}, _single_protocol(
        name, fake, splits=splits, classifier=f"{plan.extractor.name} ({probs.shape[1]} classes)")


@metric("pr", data=("image", "vector"), fake=FEATURE_ROWS, real=FEATURE_ROWS,
        higher=["precision", "recall"])
def _pr(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    values = prdc.precision_recall(_real_features(fake, ref), fake[FEATURES.name], plan.opts.pr_k)
    return values, _pair_protocol("pr", fake, ref.side().protocol, k=plan.opts.pr_k)


@metric("dc", data=("image", "vector"), fake=FEATURE_ROWS, real=FEATURE_ROWS,
        higher=["density", "coverage"])
def _dc(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    values = prdc.density_coverage(_real_features(fake, ref), fake[FEATURES.name], plan.opts.dc_k)
    return values, _pair_protocol("dc", fake, ref.side().protocol, k=plan.opts.dc_k)


@metric("quality", fake=[PROBS], higher=["confidence", "diversity"])
def _quality(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    values = classifier.classifier_quality_diversity(_probs(fake, plan))
    return values, _single_protocol("quality", fake)


@metric("modes", fake=[PROBS], higher=["modes"])
def _modes(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    probs = _probs(fake, plan)
    counts = classifier.mode_counts(probs.argmax(1), probs.shape[1])
    return ({"modes": counts["modes"], "mode_kl": counts["kl"]},
            _single_protocol("modes", fake, n_modes=probs.shape[1]))


# A sample counts as read when the classifier's largest class probability reaches this.
READ_P = 0.9


@metric("readable", fake=[PROBS], real=[PROBS], higher=["readable"])
def _readable(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    """The share of samples the classifier reads with p >= READ_P; the real images' share
    (``readable_real``) is its ceiling, measured alike when the real data can be read."""
    values = {"readable": float((_probs(fake, plan).max(1).values >= READ_P).double().mean())}
    protocol = _single_protocol("readable", fake, threshold=READ_P)
    real = ref.try_side()
    if real is not None:
        values["readable_real"] = float((_probs(real, plan).max(1).values >= READ_P).double().mean())
        protocol["n_real"] = real.n
    return values, protocol


@metric("memorisation", fake=[MEMO_SAMPLES], real=[NEIGHBOURS], higher=["nn_min", "nn_median"])
def _memorisation(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo,
                  out: Path | None) -> Result:
    o = plan.opts
    samples, tracker = fake[MEMO_SAMPLES.name], ref.side()[NEIGHBOURS.name]
    values = nearest.summarise(samples, tracker, o.memo_ratio,
                                    out / "closest_pairs.png" if out and samples.ndim == 4 else None)
    protocol = {"metric": "memorisation", "distance": "rms-pixel", "neighbours": o.memo_neighbours,
                "ratio": o.memo_ratio, "n_fake": samples.shape[0], "n_train": tracker.seen,
                "reference": info.name or UNKNOWN}
    return values, protocol


@metric("afd", fake=[FACES], real=[FACES], higher=["afd"])
def _afd(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    values = {"afd": fake[FACES.name] / fake.n}
    protocol = {"metric": "afd", **anime.detector_protocol(plan.resource(FACES)), "n_fake": fake.n}
    real = ref.try_side()
    if real is not None:
        values["afd_real"] = real[FACES.name] / real.n  # the ceiling, by the same protocol
        protocol["n_real"] = real.n
    else:
        protocol["ceiling"] = "not measured: no real images were given"
    return values, protocol


def check_metric_names(names: Iterable[str], info: DataInfo) -> list[str]:
    """Resolve ``names`` for ``info``'s data and load what their statistics need that can be
    missing or broken without weights (the AFD detector, self-checked), so that a run fails at
    start-up, not at its first evaluation hours in. Returns the canonical names."""
    resolved = resolve_names(names, info)
    for name in resolved:
        m = METRICS.get(name)
        for stat in m.fake + m.real:
            if stat.prepare is not None:
                stat.prepare()
    return resolved


class _Higher:
    """The output keys where a larger value is better (for keeping the best checkpoint), from
    every registered metric's ``higher``: supports ``key in HIGHER`` and iteration."""

    def _keys(self) -> frozenset[str]:
        return frozenset(k for _, m in METRICS.items() for k in m.higher)

    def __contains__(self, key: object) -> bool:
        return key in self._keys()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._keys()))

    def __len__(self) -> int:
        return len(self._keys())

    def __repr__(self) -> str:
        return f"HIGHER({', '.join(self)})"


HIGHER = _Higher()


def batches_of(n: int, batch_size: int, make: Callable[[int, int], Tensor]) -> Iterator[Tensor]:
    """``make(count, index)`` for consecutive chunks of ``n`` items: a lazy stream of samples,
    e.g. ``batches_of(10_000, 500, lambda m, i: run.generate(m, seed=seed + i))``."""
    if n < 1 or batch_size < 1:
        raise ConfigError(f"need a positive number of samples and batch size, got {n}, {batch_size}")
    for index, start in enumerate(range(0, n, batch_size)):
        yield make(min(batch_size, n - start), index)
