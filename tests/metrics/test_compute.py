import numpy as np
import pytest
import torch

from gankit.data.info import DataInfo
from gankit.errors import ConfigError, DataError
from gankit.metrics import anime
from gankit.metrics.compute import MetricOptions, batches_of, compute_metrics, resolve_names
from gankit.metrics.frechet import frechet_distance
from gankit.metrics.mmd import kid
from gankit.metrics.prdc import precision_recall
from gankit.metrics.protocol import ProtocolMismatch
from gankit.metrics.stats import FeatureStats

INFO = DataInfo("image", (1, 4, 4), name="tiny", size=120)


def _images(n, seed, shift=0.0):
    return torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed)) * 1.5 - 1 + shift


def test_feature_metrics_equal_direct_computation():
    fake, real = _images(90, 0, shift=0.2), _images(120, 1)
    opts = MetricOptions(kid_subsets=4, kid_subset_size=50, seed=5)
    scores = compute_metrics(["fid", "kid", "pr"], fake.split(25), real.split(40), INFO,
                             extractor="identity", options=opts, use_cache=False)
    f, r = fake.flatten(1).double().numpy(), real.flatten(1).double().numpy()
    direct_fid = frechet_distance(f.mean(0), np.cov(f, rowvar=False), r.mean(0), np.cov(r, rowvar=False))
    torch.testing.assert_close(torch.tensor(scores["fid"]), torch.tensor(direct_fid), rtol=1e-6, atol=1e-9)
    direct_kid = kid(fake.flatten(1), real.flatten(1), subsets=4, subset_size=50, seed=5)
    torch.testing.assert_close(torch.tensor([scores["kid"], scores["kid_std"]]),
                               torch.tensor(direct_kid), rtol=1e-5, atol=1e-7)
    direct_pr = precision_recall(real.flatten(1), fake.flatten(1), k=3)
    assert (scores["precision"], scores["recall"]) == (direct_pr["precision"], direct_pr["recall"])
    protocol = scores.protocol["fid"]
    assert protocol["n_fake"] == 90 and protocol["n_real"] == 120 and protocol["reference"] == "tiny"
    assert protocol["extractor"] == "identity" and protocol["item_shape"] == "1x4x4"
    assert scores.protocol["kid"]["subsets"] == 4


def test_same_samples_give_zero_fid():
    x = _images(50, 2)
    scores = compute_metrics(["fid"], [x], [x], INFO, extractor="identity", use_cache=False)
    assert abs(scores["fid"]) < 1e-6


def test_reference_statistics_are_cached(tmp_path):
    fake, real = _images(40, 3), _images(60, 4)
    first = compute_metrics(["fid", "kid"], [fake], [real], INFO, extractor="identity", cache_dir=tmp_path)
    # one entry per statistic the metrics declare: FID's moments, KID's features
    entries = sorted(p.name for p in (tmp_path / "stats").glob("*.npz"))
    assert [e.split("-")[3] for e in entries] == ["feature_stats", "features"]
    # The real data is not needed again: the cache answers.
    again = compute_metrics(["fid", "kid"], [fake], None, INFO, extractor="identity", cache_dir=tmp_path)
    assert again == first
    with pytest.raises(DataError, match="need the real data"):  # another sample count: another key
        compute_metrics(["fid"], [fake], None, INFO, extractor="identity", cache_dir=tmp_path, real_n=10)


def test_given_statistics_with_another_protocol_are_refused():
    stats = FeatureStats({"extractor": "identity", "item_shape": "1x8x8"})
    stats.update(np.random.default_rng(0).standard_normal((20, 16)))
    with pytest.raises(ProtocolMismatch, match=r"item_shape \('1x4x4' vs '1x8x8'\)"):
        compute_metrics(["fid"], [_images(20, 5)], None, INFO, extractor="identity", stats=stats,
                        use_cache=False)


@pytest.fixture(scope="module")
def digits():
    from gankit.data.builtin import load_builtin, split_indices
    from gankit.metrics.extractors.digits import WEIGHTS

    blob = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    x, y, _ = load_builtin("mnist5k")
    _, test = split_indices(len(x), blob["held_out"], blob["split_seed"])
    # The data set is ordered by class; shuffled, every Inception Score split sees all digits.
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:300]
    return x[test][order]


def test_classifier_metrics_on_real_digits(digits):
    info = DataInfo("image", (1, 28, 28), name="mnist5k", size=5000)
    scores = compute_metrics(["is", "quality", "modes"], digits.split(100), None, info, use_cache=False,
                             options=MetricOptions(is_splits=1))
    assert scores["modes"] == 10 and scores["mode_kl"] < 0.05
    # Trained with label smoothing 0.05, the classifier's confidence tops out near 0.955,
    # which caps the Inception Score of perfect digits near exp(ln 10 - 0.25) = 7.8.
    assert scores["confidence"] > 0.9 and 6.5 < scores["classifier_score"] < 10
    assert "is" not in scores  # the digit CNN is not Inception
    assert scores.protocol["classifier_score"]["classifier"] == "digit-cnn (10 classes)"
    assert scores.protocol["modes"]["extractor"] == "digit-cnn"


def test_features_only_extractor_cannot_give_is(tmp_path):
    path = tmp_path / "feats.pt"
    torch.jit.save(torch.jit.script(torch.nn.Flatten()), str(path))
    with pytest.raises(ConfigError, match="no class probabilities"):
        compute_metrics(["is"], [_images(4, 0)], None, INFO, extractor=str(path), use_cache=False)


def test_memorisation_finds_the_copy(tmp_path):
    real = _images(80, 6)
    fake = torch.cat([real[10:11], _images(3, 7)])
    scores = compute_metrics(["memorisation", "fid"], [fake], real.split(30), INFO, extractor="identity",
                             out_dir=tmp_path, use_cache=False, options=MetricOptions(memo_neighbours=20))
    assert scores["near_copies"] == 1 and scores["nn_min"] == 0.0
    assert (tmp_path / "closest_pairs.png").is_file()
    assert scores.protocol["near_copies"]["n_train"] == 80


def test_afd_uses_the_detector(monkeypatch):
    monkeypatch.setattr(anime, "load_detector", lambda: lambda im: [1] if im.getpixel((0, 0))[0] > 200 else [])
    images = torch.cat([torch.ones(1, 3, 4, 4), -torch.ones(3, 3, 4, 4)])
    info = DataInfo("image", (3, 4, 4), name="anime")
    assert compute_metrics(["afd"], [images], None, info, use_cache=False)["afd"] == 0.25


def test_metric_names():
    vectors = DataInfo("vector", (2,), name="ring8")
    assert resolve_names(["modes", "FID", "fid"], vectors) == ["toy", "fid"]
    assert resolve_names(["prdc", "memorization"], INFO) == ["pr", "dc", "memorisation"]
    with pytest.raises(ConfigError, match="did you mean 'kid'"):
        resolve_names(["kidd"], INFO)
    with pytest.raises(ConfigError, match="for image data"):
        resolve_names(["toy"], INFO)


def test_batches_of():
    seen = []
    out = list(batches_of(7, 3, lambda m, i: seen.append((m, i)) or torch.zeros(m, 2)))
    assert seen == [(3, 0), (3, 1), (1, 2)] and sum(len(b) for b in out) == 7


class _TinyInception(torch.nn.Module):
    """Stands in for an Inception TorchScript: 3x299x299 in, 2048 features (and logits) out."""

    def __init__(self, logits: bool):
        super().__init__()
        torch.manual_seed(0)
        self.features = torch.nn.Linear(3, 2048)
        self.head = torch.nn.Linear(3, 1008) if logits else None

    def forward(self, x):
        pooled = x.mean((2, 3))
        if self.head is None:
            return self.features(pooled)
        return self.features(pooled), self.head(pooled) * 50


def _script(module, path):
    torch.jit.save(torch.jit.script(module), str(path))
    return path


def test_inception_score_only_from_an_inception_with_logits(tmp_path):
    from gankit.metrics.classifier import inception_score
    from gankit.metrics.extractors.inception import tf_inception_input

    images = _images(6, 3)
    net = _TinyInception(logits=True)
    path = _script(net, tmp_path / "inception_logits.pt")
    scores = compute_metrics(["is"], [images], None, INFO, extractor="inception", inception_path=path,
                             use_cache=False, options=MetricOptions(is_splits=2))
    assert set(scores) == {"is", "is_std"}
    assert scores.protocol["is"]["classifier"] == "inception-v3-tf (1008 classes)"
    with torch.no_grad():
        probs = net(tf_inception_input(images))[1].softmax(-1)
    torch.testing.assert_close(torch.tensor(scores["is"]), torch.tensor(inception_score(probs, 2)[0]))
    # the FID network alone (no classifier head) gives no IS and says why, before any pass
    plain = _script(_TinyInception(logits=False), tmp_path / "inception_fid.pt")
    with pytest.raises(ConfigError, match="the FID Inception has no classifier head"):
        compute_metrics(["is"], iter(()), None, INFO, extractor="inception", inception_path=plain,
                        use_cache=False)


class _FirstPixelClassifier(torch.nn.Module):
    """Two classes with probabilities (p, 1 - p), p = (first pixel + 1) / 2."""

    def forward(self, x):
        p = (x[:, 0, 0, 0] + 1) / 2
        return {"probs": torch.stack([p, 1 - p], 1)}


def _with_first_pixels(values):
    x = torch.zeros(len(values), 1, 4, 4)
    x[:, 0, 0, 0] = torch.tensor(values)
    return x


def test_readable_is_the_share_read_with_p_at_least_0_9(tmp_path, digits):
    path = tmp_path / "two_classes.pt"
    torch.jit.save(torch.jit.script(_FirstPixelClassifier()), str(path))
    # largest probabilities 0.95, 0.5, 0.85, 0.95 (class 1) -> 2 of 4 read
    fake = _with_first_pixels([0.9, 0.0, 0.7, -0.9])
    real = _with_first_pixels([0.9, 0.85, 0.1])  # 0.95, 0.925, 0.55 -> 2 of 3
    scores = compute_metrics(["readable"], [fake], [real], INFO, extractor=str(path), use_cache=False)
    assert scores["readable"] == 0.5 and scores["readable_real"] == pytest.approx(2 / 3)
    assert scores.protocol["readable"]["threshold"] == 0.9
    alone = compute_metrics(["readable"], [fake], None, INFO, extractor=str(path), use_cache=False)
    assert dict(alone) == {"readable": 0.5}  # no real data: no ceiling, no error
    # the project's digit classifier reads most real digits (the README's 95%)
    info = DataInfo("image", (1, 28, 28), name="mnist5k", size=5000)
    assert compute_metrics(["readable"], [digits], None, info, use_cache=False)["readable"] > 0.9


def test_fid_is_named_by_its_features(tmp_path, digits):
    info = DataInfo("image", (1, 28, 28), name="mnist5k", size=5000)
    in_digits = compute_metrics(["fid"], digits[:150].split(50), digits[150:].split(50), info, use_cache=False)
    assert set(in_digits) == {"fid_digits"}  # the auto extractor on 28x28 digits: the digit CNN
    assert in_digits.protocol["fid_digits"]["extractor"] == "digit-cnn"
    assert set(in_digits.protocols()) == {"fid_digits"}  # metrics.jsonl groups it by that name
    path = _script(_TinyInception(logits=False), tmp_path / "inception.pt")
    inception = compute_metrics(["fid"], [_images(6, 3)], [_images(6, 4)], INFO, extractor="inception",
                                inception_path=path, use_cache=False)
    assert set(inception) == {"fid"} and inception.protocol["fid"]["extractor"] == "inception-v3-tf"
    vectors = DataInfo("vector", (2,), name="points")
    assert set(compute_metrics(["fid"], [torch.randn(9, 2)], [torch.randn(9, 2)], vectors,
                               use_cache=False)) == {"fid"}
