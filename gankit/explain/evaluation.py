"""evaluation-pitfalls: what a classifier's view, FID and the memorisation check each miss.

Three stand-in "generators" on MNIST-5k, scored by gankit's metrics with gankit's digit
classifier (features for FID, probabilities for the classifier view):

* ``honest``: held-out real digits the "model" never saw, what a perfect generator makes;
* ``one-per-class``: for each class the training digit the classifier is surest of,
  repeated (a generator that collapsed to one good sample per class);
* ``copier``: training digits returned as they are (a generator that memorised its data).

And AFD (the share of samples in which the anime face detector finds a face) on the built-in
drawn faces at 32 px, the size the CPU face presets make: ``honest`` is held-out faces,
``collapsed`` one face-like image (the training face the detector is surest of) tiled over
every sample, a generator that collapsed. FID here is on 8x8 colour thumbnails (a small
stand-in extractor that keeps the topic to seconds; Inception would say the same, slower).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from gankit.data.builtin import load_builtin, split_indices
from gankit.explain.base import Topic, pyplot, register, save_figure
from gankit.metrics.classifier import classifier_quality_diversity, inception_score
from gankit.metrics.conditional import extract, fid_of_features
from gankit.metrics.extractors.digits import DigitExtractor
from gankit.metrics.nearest import memorisation
from gankit.errors import DataError

SETTINGS = {"quick": (1000, 300), "full": (2500, 2000)}  # training images, samples per generator
FACE_SETTINGS = {"quick": (300, 200), "full": (1000, 500)}  # reference faces, samples
FACE_SIZE = 32
GENERATORS = ("honest", "one-per-class", "copier")


def within_class_diversity(features: torch.Tensor, probs: torch.Tensor) -> float:
    """Mean distance between two samples the classifier puts in the same class, averaged over
    the classes present: 0 when every class is one repeated image."""
    labels = probs.argmax(1)
    spreads = []
    for k in labels.unique():
        f = features[labels == k]
        if len(f) > 1:
            d = torch.cdist(f, f, compute_mode="donot_use_mm_for_euclid_dist")  # exact zeros
            spreads.append(d.sum() / (len(f) * (len(f) - 1)))
    return float(torch.stack(spreads).mean())


def make_generators(x: torch.Tensor, train: torch.Tensor, test: torch.Tensor, n: int,
                    probs_train: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three sample sets of ``n`` images each (see the module docstring)."""
    best = [int(torch.where(probs_train.argmax(1) == k, probs_train[:, k], -1.0).argmax())
            for k in range(probs_train.shape[1])]
    repeats = x[train[best]].repeat_interleave(-(-n // len(best)), 0)[:n]
    return {"honest": x[test[:n]], "one-per-class": repeats, "copier": x[train[:n]]}


def score(name: str, samples: torch.Tensor, extractor: DigitExtractor, train_x: torch.Tensor,
          train_feats: torch.Tensor) -> dict[str, float]:
    feats, probs = extract(extractor, samples)
    view = classifier_quality_diversity(probs)
    mem = memorisation(samples, train_x)
    return {"inception_score": inception_score(probs, splits=1)[0],
            "confidence": view["confidence"], "class_entropy": view["entropy"],
            "class_diversity": view["diversity"],
            "fid": fid_of_features(feats, train_feats),
            "within_class_diversity": within_class_diversity(feats, probs),
            "near_copy_fraction": mem["near_copy_fraction"], "nn_median": mem["nn_median"]}


def run(size: str, seed: int) -> tuple[dict[str, Any], Callable[[Path], None]]:
    n_train, n = SETTINGS[size]
    x, _, _ = load_builtin("mnist5k")
    train, test = split_indices(len(x), 0.5, seed)
    # MNIST-5k is stored class by class: shuffle so that any prefix holds every class
    g = torch.Generator().manual_seed(seed)
    train = train[torch.randperm(len(train), generator=g)][:n_train]
    test = test[torch.randperm(len(test), generator=g)]
    extractor = DigitExtractor()
    with torch.no_grad():
        train_feats, probs_train = extract(extractor, x[train])
        gens = make_generators(x, train, test, n, probs_train)
        scores = {g: score(g, s, extractor, x[train], train_feats) for g, s in gens.items()}
    numbers = {"train_images": n_train, "samples": n, "scores": scores,
               **{f"{k}_{g.replace('-', '_')}": v for g, s in scores.items() for k, v in s.items()}}
    faces, face_examples = afd_pitfall(size)
    numbers.update(faces)
    examples = {g: s[:: max(1, n // 10)][:10] for g, s in gens.items()}
    return numbers, lambda path: _draw(numbers, examples, face_examples, path)


def _thumbnails(x: torch.Tensor) -> torch.Tensor:
    """8x8 colour thumbnails as 192 features: a cheap stand-in for Inception features."""
    return torch.nn.functional.adaptive_avg_pool2d(x, 8).flatten(1)


def afd_pitfall(size: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """AFD and thumbnail FID of held-out drawn faces and of a collapsed generator (one face
    tiled over every sample), against reference faces; all at 32 px."""
    from gankit.data.faces import load_faces
    from gankit.data.sources import convert_images
    from gankit.metrics import anime

    n_ref, n = FACE_SETTINGS[size]
    x = convert_images(load_faces(n_ref + n)[0], FACE_SIZE, 3)  # drawn at 64, as training does
    ref, honest = x[:n_ref], x[n_ref:]
    try:
        detect = anime.load_detector()
    except DataError as err:  # no detector here: the FID half still stands
        return {"afd_available": str(err), "afd_honest": float("nan"),
                "afd_collapsed": float("nan"), "fid_faces_honest": float("nan"),
                "fid_faces_collapsed": float("nan"), "afd_likelihood": float("nan")}, {}
    hits = [detect(im) for im in anime.to_pil(ref)]
    best = max(range(n_ref), key=lambda i: max((f["likelihood"] for f in hits[i]), default=0.0))
    collapsed = ref[best:best + 1].expand(n, -1, -1, -1)
    feats = {"ref": _thumbnails(ref), "honest": _thumbnails(honest)}
    out = {"afd_honest": anime.anime_face_rate(honest, detect),
           "afd_collapsed": anime.anime_face_rate(collapsed[:1], detect),  # all n are this one
           "afd_likelihood": max((f["likelihood"] for f in hits[best]), default=0.0),
           "fid_faces_honest": fid_of_features(feats["honest"], feats["ref"]),
           # a collapsed set's covariance is 0: the Frechet distance is still defined
           "fid_faces_collapsed": fid_of_features(_thumbnails(collapsed), feats["ref"]),
           "afd_protocol": anime.detector_protocol(detect), "face_samples": n}
    return out, {"honest": honest[:10], "collapsed": collapsed[:10]}


def _draw(n: dict[str, Any], examples: dict[str, torch.Tensor],
          face_examples: dict[str, torch.Tensor], path: Path) -> None:
    from gankit.viz import image_grid

    plt = pyplot()
    fig = plt.figure(figsize=(14, 8))
    grid = fig.add_gridspec(3, 12, height_ratios=(3, 1, 2.2))
    panels = [("inception_score", "classifier score (IS), higher = better"),
              ("fid", "FID in digit features to the training set, lower = better"),
              ("within_class_diversity", "within-class diversity (feature distance)"),
              ("near_copy_fraction", "share flagged as near-copies of training data")]
    colours = ["tab:green", "tab:red", "tab:purple"]
    for i, (key, label) in enumerate(panels):
        ax = fig.add_subplot(grid[0, 3 * i:3 * i + 3])
        ax.bar(GENERATORS, [n["scores"][g][key] for g in GENERATORS], color=colours)
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    for i, g in enumerate(GENERATORS):
        ax = fig.add_subplot(grid[1, 4 * i:4 * i + 4])
        ax.imshow(image_grid(examples[g], nrow=10), cmap="gray")
        ax.set_title(f"{g}: samples", fontsize=9)
        ax.axis("off")
    if face_examples:
        _draw_faces(fig, grid, n, face_examples)
    save_figure(fig, path)


def _draw_faces(fig, grid, n: dict[str, Any], examples: dict[str, torch.Tensor]) -> None:
    from gankit.viz import image_grid

    names, colours = ("honest", "collapsed"), ["tab:green", "tab:red"]
    for i, (key, label) in enumerate([("afd", "faces: AFD, higher = 'better'"),
                                      ("fid_faces", "faces: FID (thumbnails), lower = better")]):
        ax = fig.add_subplot(grid[2, 3 * i:3 * i + 3])
        ax.bar(names, [n[f"{key}_{g}"] for g in names], color=colours)
        ax.set_title(label, fontsize=9)
    for i, g in enumerate(names):
        ax = fig.add_subplot(grid[2, 6 + 3 * i:9 + 3 * i])
        ax.imshow(image_grid(examples[g], nrow=5))
        ax.set_title(f"{g} faces ({FACE_SIZE} px)", fontsize=9)
        ax.axis("off")


register(Topic(
    name="evaluation-pitfalls",
    title="Each metric has a blind spot: classifier score, FID, memorisation",
    run=run,
    explanation="""
A classifier judges quality by how sure it is of each sample (low entropy of p(c|x)) and
diversity by how evenly the samples spread over classes (high entropy of the mean p(c)).
A generator that repeats one good digit per class satisfies both: its classifier score is
{inception_score_one_per_class}, against {inception_score_honest} for real unseen digits.
FID compares whole feature distributions and catches it ({fid_one_per_class} against
{fid_honest}), and so does the within-class diversity ({within_class_diversity_one_per_class}
against {within_class_diversity_honest}). A generator that copies its training images
fools FID instead: {fid_copier}, even better than real unseen digits, because it reproduces
the reference set itself. Only a memorisation check sees it: it flags a share of
{near_copy_fraction_copier} of its samples as near-copies of training images, against
{near_copy_fraction_honest} for the honest samples.

AFD, the share of samples in which an anime face detector finds a face, has the blind spot
of any per-sample check. A generator that collapsed onto one face-like image tiles it over
every sample and scores AFD {afd_collapsed} (detector confidence {afd_likelihood}), while
{face_samples} held-out drawn faces at the same 32 px score {afd_honest}; FID (on thumbnails
here) sees the collapse: {fid_faces_collapsed} against {fid_faces_honest}. So gankit never
reports AFD without FID, and always beside its ceiling afd_real. No single number is enough;
report several.
""",
))
