"""``compute_metrics``: every metric from one pass over the samples and one over the data.

Generated samples and real data arrive as iterables of batches and are read once each;
only features (or class probabilities) are kept, plus at most ``memo_max`` samples for the
memorisation check. Reference statistics of the real data come from ``stats`` (a
``--stats`` file), from the on-disk cache, or from a pass over ``real``, in that order.

Metric names and what they report:

=============  ==============================================================
fid            ``fid``
kid            ``kid``, ``kid_std``
is             ``is``, ``is_std`` with an Inception classifier (``--inception`` weights that
               return logits); with any other classifier (the digit CNN, a TorchScript
               model) ``classifier_score``, ``classifier_score_std``: the same formula,
               not comparable with published Inception Scores
pr             ``precision``, ``recall``
dc             ``density``, ``coverage``
quality        ``confidence``, ``entropy``, ``diversity``, ``diversity_max``
modes          ``modes``, ``mode_kl`` (image data, classifier modes)
memorisation   ``nn_min``, ``nn_median``, ``near_copies``, ``near_copy_fraction``
afd            ``afd``, and ``afd_real`` (the detector's rate on the real data: AFD's
               ceiling) when the real data is given
toy            ``modes``, ``high_quality``, ``mode_kl`` (ring8 / grid25 vectors)
=============  ==============================================================
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import Tensor

from gankit.data.info import DataInfo
from gankit.errors import ConfigError, DataError
from gankit.metrics import anime, classifier, frechet, mmd, nearest, prdc, toy
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
    """What one pass over a set of samples keeps."""

    stats: FeatureStats | None = None
    features: list[Tensor] = field(default_factory=list)
    probs: list[Tensor] = field(default_factory=list)
    kept: list[Tensor] = field(default_factory=list)
    n: int = 0
    n_kept: int = 0
    faces: int = 0
    item_shape: tuple[int, ...] = ()

    def feature_array(self) -> Tensor:
        return torch.cat(self.features)

    def kept_tensor(self) -> Tensor:
        return torch.cat(self.kept)


@dataclass
class _Plan:
    """Which outputs each pass must keep, derived from the metric names."""

    names: list[str]
    extractor: Extractor | None
    opts: MetricOptions
    keep_features: bool = False
    keep_probs: bool = False
    keep_items: int = 0
    detector: Callable | None = None


def _make_plan(names: list[str], info: DataInfo, extractor: str, device: str | torch.device,
               inception_path: str | Path | None, opts: MetricOptions) -> _Plan:
    wanted = set(names)
    needs_probs = wanted & _needing("probs")
    ext = None
    if wanted & (_needing("features") | needs_probs):
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
    plan = _Plan(names, ext, opts, keep_features=bool(wanted & _needing("real_features")),
                 keep_probs=bool(needs_probs))
    if "memorisation" in wanted:
        plan.keep_items = opts.memo_max
    if "toy" in wanted:
        plan.keep_items = -1  # all: toy samples are 2-D points
    if "afd" in wanted:
        plan.detector = anime.load_detector()
    return plan


def _base_protocol(ext: Extractor | None, shape: tuple[int, ...]) -> Protocol:
    protocol = ext.protocol() if ext is not None else {}
    protocol["item_shape"] = "x".join(str(s) for s in shape)
    return protocol


def _scan(batches: Iterable[Tensor], plan: _Plan, data: str, keep: int,
          tracker: nearest.NearestTracker | None = None) -> _Side:
    """One pass over ``batches``: features, probabilities, kept items, faces, neighbours."""
    side = _Side()
    for x in batches:
        if not isinstance(x, Tensor) or x.ndim < 2 or x.shape[0] == 0:
            raise DataError(f"batches must be non-empty tensors [N, ...], got {type(x).__name__}")
        x = x.detach().cpu().float()
        if not side.item_shape:
            side.item_shape = tuple(x.shape[1:])
            side.stats = FeatureStats(_base_protocol(plan.extractor, side.item_shape))
        elif tuple(x.shape[1:]) != side.item_shape:
            raise DataError(f"items of shape {tuple(x.shape[1:])} and {side.item_shape} in one set")
        _scan_batch(side, x, plan, keep, tracker)
    if side.n == 0:
        raise DataError(f"no {data} samples were given")
    side.stats.protocol.update(data=data, n=side.n)
    return side


def _scan_batch(side: _Side, x: Tensor, plan: _Plan, keep: int,
                tracker: nearest.NearestTracker | None) -> None:
    if plan.extractor is not None:
        out = plan.extractor(x)
        if out.features is not None:
            side.stats.update(out.features)
            if plan.keep_features:
                side.features.append(out.features)
        if plan.keep_probs and out.probs is not None:
            side.probs.append(out.probs)
    room = x.shape[0] if keep < 0 else max(0, keep - side.n_kept)
    if room:
        side.kept.append(x[:room])
        side.n_kept += min(room, x.shape[0])
    if plan.detector is not None:
        side.faces += anime.count_faces(x, plan.detector)
    if tracker is not None:
        tracker.update(x)
    side.n += x.shape[0]


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
    Returns :class:`Scores`.
    """
    names = resolve_names(names, info)
    opts = options or MetricOptions()
    plan = _make_plan(names, info, extractor, device, inception_path, opts)
    cache = StatsCache(cache_dir) if use_cache else None
    if fake_real is not None:
        fake_side = _Reference(plan, info, fake, None, fake_real[0], cache, None, fake_real[1]).side()
    else:
        fake_side = _scan(fake, plan, "generated", plan.keep_items)
    tracker = (nearest.NearestTracker(fake_side.kept_tensor(), opts.memo_neighbours)
               if "memorisation" in names else None)
    ref = _Reference(plan, info, real, stats, real_n, cache, tracker, reference)
    scores = Scores()
    for name in names:
        values, protocol = METRICS.get(name).compute(fake_side, ref, plan, info, Path(out_dir) if out_dir else None)
        scores.add(values, protocol)
    if fake_side.stats is not None and fake_side.stats.dim:
        scores.fake_stats = fake_side.stats
    return scores


class _Reference:
    """The real side, read at most once: statistics, features and the memorisation pass."""

    def __init__(self, plan: _Plan, info: DataInfo, real: Iterable[Tensor] | None,
                 stats: FeatureStats | None, real_n: int | None, cache: StatsCache | None,
                 tracker: nearest.NearestTracker | None = None, reference: Protocol | None = None):
        self.plan, self.info, self.real, self.cache = plan, info, real, cache
        self.reference = dict(reference or {})
        self.given_stats = stats
        self.real_n = real_n if real_n is not None else (info.size or "all")
        # Memorisation needs the real images themselves, so its pass cannot come from a cache.
        self.tracker = tracker
        self._side: _Side | None = None

    def _key(self) -> Protocol:
        key = _base_protocol(self.plan.extractor, tuple(self.info.shape))
        key.update(data=self.info.name, n=self.real_n, **self.reference)
        return key

    def side(self) -> _Side:
        """Real features and statistics (from the cache when possible)."""
        if self._side is not None:
            return self._side
        use_cache = self.cache is not None and bool(self.info.name)
        # Memorisation needs the real images, AFD's ceiling their detections: no cache then.
        if use_cache and self.tracker is None and self.plan.detector is None:
            hit = self.cache.load(self._key(), need_features=self.plan.keep_features)
            if hit is not None:
                stats, feats = hit
                feats = [torch.from_numpy(feats)] if feats is not None else []
                self._side = _Side(stats=stats, n=stats.n, features=feats)
                return self._side
        if self.real is None:
            raise DataError("these metrics need the real data (or a --stats file for FID alone), "
                            "but none was given")
        side = _scan(self.real, self.plan, self.info.name or "real", 0, self.tracker)
        self.real = None  # an iterable may not be readable twice
        side.stats.protocol.update(self.reference)
        if use_cache and side.stats.n >= 2 and self.plan.extractor is not None:
            feats = side.feature_array().numpy() if self.plan.keep_features else None
            self.cache.save(self._key(), side.stats, feats)
        self._side = side
        return side

    def stats(self) -> FeatureStats:
        return self.given_stats if self.given_stats is not None else self.side().stats


# ---- the metrics ------------------------------------------------------------------------------
Result = tuple[dict[str, float], Protocol]


@dataclass(frozen=True)
class Metric:
    """A metric: ``compute(fake, ref, plan, info, out) -> (values, protocol)`` and what it needs."""

    name: str
    compute: Callable[..., Result]
    data: tuple[str, ...]  # the kinds of data it applies to: "image", "vector"
    needs: frozenset[str]  # "features" (of the samples), "real_features", "probs"
    higher: tuple[str, ...]  # its output keys where a larger value is better


METRICS: Registry[Metric] = Registry("metric")


def metric(name: str, *, data: tuple[str, ...] = ("image",), needs: Iterable[str] = (),
           higher: Iterable[str] = ()) -> Callable:
    """Decorator: register ``compute`` as the metric ``name`` (for ``--metrics`` and
    ``eval.metrics``). ``needs`` says what the passes over the samples keep for it:
    ``features`` (the extractor's features, whose statistics FID reads), ``real_features``
    (the real side's features too) or ``probs`` (class probabilities)."""
    def deco(compute: Callable[..., Result]) -> Callable[..., Result]:
        needed = frozenset(needs)
        needed |= {"features"} if "real_features" in needed else set()
        METRICS.add(name, Metric(name, compute, tuple(data), needed, tuple(higher)))
        return compute

    return deco


def metric_names(kind: str) -> tuple[str, ...]:
    """The metrics of ``kind`` data ("image" or "vector"), in the order they are registered
    below (the order errors list them in)."""
    return tuple(name for name, m in METRICS.items() if kind in m.data)


def _needing(what: str) -> set[str]:
    return {name for name, m in METRICS.items() if what in m.needs}


def _pair_protocol(metric: str, fake: _Side, real_protocol: Protocol, **params: Any) -> Protocol:
    protocol = {k: v for k, v in fake.stats.protocol.items() if k not in ("data", "n")}
    reference = UNKNOWN if is_unknown(real_protocol) else real_protocol.get("data", UNKNOWN)
    protocol.update(metric=metric, n_fake=fake.n, reference=reference,
                    n_real=real_protocol.get("n", UNKNOWN), **params)
    if "subset" in real_protocol:
        protocol["real_subset"] = real_protocol["subset"]
    return protocol


@metric("toy", data=("vector",), higher=["modes", "modes_fair", "high_quality", "within_1std"])
def _toy(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    from gankit.data.toy import MIXTURES

    if info.name not in MIXTURES:
        raise DataError(f"toy metrics need one of the mixtures {', '.join(sorted(MIXTURES))}; "
                        f"the data is '{info.name}'")
    samples = fake.kept_tensor()
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


@metric("fid", data=("image", "vector"), needs=["features"])
def _fid(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    real_stats = ref.stats()
    check_comparable(fake.stats, real_stats)
    value = frechet.frechet_distance(fake.stats.mean, fake.stats.cov, real_stats.mean, real_stats.cov)
    return {"fid": value}, _pair_protocol("fid", fake, real_stats.protocol)


def _real_features(fake: _Side, ref: _Reference) -> Tensor:
    real = ref.side()
    check_comparable(fake.stats, real.stats)
    return real.feature_array()


@metric("kid", data=("image", "vector"), needs=["real_features"])
def _kid(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    o = plan.opts
    mean, std = mmd.kid(fake.feature_array(), _real_features(fake, ref), o.kid_subsets,
                        o.kid_subset_size, o.seed)
    return {"kid": mean, "kid_std": std}, _pair_protocol(
        "kid", fake, ref.side().stats.protocol, subsets=o.kid_subsets,
        subset_size=o.kid_subset_size, seed=o.seed)



def _probs(fake: _Side, plan: _Plan) -> Tensor:
    if not fake.probs:
        raise ConfigError(f"the '{plan.extractor.name}' extractor returned no class probabilities")
    return torch.cat(fake.probs)


def _single_protocol(metric: str, fake: _Side, **params: Any) -> Protocol:
    protocol = {k: v for k, v in fake.stats.protocol.items() if k not in ("data", "n")}
    protocol.update(metric=metric, n_fake=fake.n, **params)
    return protocol


@metric("is", needs=["probs"], higher=["is", "classifier_score"])
def _is(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    """The Inception Score when the classifier is Inception; under any other classifier the
    same formula is a 'classifier score', named so that it is never read as a published IS."""
    splits = min(plan.opts.is_splits, fake.n)
    probs = _probs(fake, plan)
    mean, std = classifier.inception_score(probs, splits)
    name = "is" if isinstance(plan.extractor, InceptionExtractor) else "classifier_score"
    return {name: mean, f"{name}_std": std}, _single_protocol(
        name, fake, splits=splits, classifier=f"{plan.extractor.name} ({probs.shape[1]} classes)")


@metric("pr", data=("image", "vector"), needs=["real_features"], higher=["precision", "recall"])
def _pr(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    values = prdc.precision_recall(_real_features(fake, ref), fake.feature_array(), plan.opts.pr_k)
    return values, _pair_protocol("pr", fake, ref.side().stats.protocol, k=plan.opts.pr_k)


@metric("dc", data=("image", "vector"), needs=["real_features"], higher=["density", "coverage"])
def _dc(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    values = prdc.density_coverage(_real_features(fake, ref), fake.feature_array(), plan.opts.dc_k)
    return values, _pair_protocol("dc", fake, ref.side().stats.protocol, k=plan.opts.dc_k)


@metric("quality", needs=["probs"], higher=["confidence", "diversity"])
def _quality(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    values = classifier.classifier_quality_diversity(_probs(fake, plan))
    return values, _single_protocol("quality", fake)


@metric("modes", needs=["probs"], higher=["modes"])
def _modes(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    probs = _probs(fake, plan)
    counts = classifier.mode_counts(probs.argmax(1), probs.shape[1])
    return ({"modes": counts["modes"], "mode_kl": counts["kl"]},
            _single_protocol("modes", fake, n_modes=probs.shape[1]))


@metric("memorisation", higher=["nn_min", "nn_median"])
def _memorisation(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo,
                  out: Path | None) -> Result:
    o = plan.opts
    samples, tracker = fake.kept_tensor(), ref.tracker
    ref.side()
    values = nearest.summarise(samples, tracker, o.memo_ratio,
                                    out / "closest_pairs.png" if out and samples.ndim == 4 else None)
    protocol = {"metric": "memorisation", "distance": "rms-pixel", "neighbours": o.memo_neighbours,
                "ratio": o.memo_ratio, "n_fake": samples.shape[0], "n_train": tracker.seen,
                "reference": info.name or UNKNOWN}
    return values, protocol


@metric("afd", higher=["afd"])
def _afd(fake: _Side, ref: _Reference, plan: _Plan, info: DataInfo, out: Path | None) -> Result:
    values = {"afd": fake.faces / fake.n}
    protocol = {"metric": "afd", **anime.detector_protocol(plan.detector), "n_fake": fake.n}
    if ref.real is not None or ref._side is not None:  # the real side was (or can be) scanned
        real = ref.side()
        values["afd_real"] = real.faces / real.n  # the ceiling, by the same protocol
        protocol["n_real"] = real.n
    else:
        protocol["ceiling"] = "not measured: no real images were given"
    return values, protocol


def check_metric_names(names: Iterable[str], info: DataInfo) -> list[str]:
    """Resolve ``names`` for ``info``'s data and load what they need that can be missing or
    broken without weights (the AFD detector, self-checked), so that a run fails at start-up,
    not at its first evaluation hours in. Returns the canonical names."""
    resolved = resolve_names(names, info)
    if "afd" in resolved:
        anime.load_detector()
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
