import warnings

import numpy as np
import pytest
import torch

from gankit.errors import DataError
from gankit.metrics.compute import Scores, compare_scores
from gankit.metrics.frechet import frechet_distance
from gankit.metrics.protocol import ProtocolMismatch
from gankit.metrics.stats import FeatureStats, check_comparable

PROTOCOL = {"extractor": "inception-v3-tf", "weights": "sha256:ab", "resize": "tf-bilinear-299",
            "input": "uint8", "item_shape": "3x64x64"}


def test_streaming_equals_numpy_mean_and_cov():
    rng = np.random.default_rng(0)
    # A large common offset: a naive sum of outer products would lose digits here.
    x = rng.standard_normal((103, 7)) * 0.1 + 1e3
    stats = FeatureStats()
    for part in np.split(x, [1, 10, 50, 51]):  # uneven batches, one of a single row
        stats.update(part)
    assert stats.n == 103
    torch.testing.assert_close(torch.from_numpy(stats.mean), torch.from_numpy(x.mean(0)),
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.from_numpy(stats.cov), torch.from_numpy(np.cov(x, rowvar=False)),
                               rtol=1e-9, atol=1e-12)


def test_npz_round_trip_with_pytorch_fid_keys(tmp_path):
    rng = np.random.default_rng(1)
    stats = FeatureStats(dict(PROTOCOL, data="mnist5k", n=50))
    stats.update(rng.standard_normal((50, 4)))
    path = stats.to_npz(tmp_path / "s.npz")
    with np.load(path) as f:  # what pytorch-fid reads
        torch.testing.assert_close(torch.from_numpy(f["mu"]), torch.from_numpy(stats.mean))
        torch.testing.assert_close(torch.from_numpy(f["sigma"]), torch.from_numpy(stats.cov))
    back = FeatureStats.from_npz(path)
    assert back.n == 50 and back.protocol == stats.protocol
    torch.testing.assert_close(torch.from_numpy(back.cov), torch.from_numpy(stats.cov))


def test_foreign_file_without_protocol_is_read_as_unknown(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((30, 3))
    np.savez(tmp_path / "fid_stats.npz", mu=x.mean(0), sigma=np.cov(x, rowvar=False))
    foreign = FeatureStats.from_npz(tmp_path / "fid_stats.npz")
    assert foreign.protocol["origin"] == "unknown"
    ours = FeatureStats(PROTOCOL)
    ours.update(x)
    with pytest.warns(UserWarning, match="unknown"):
        check_comparable(ours, foreign)
    assert abs(frechet_distance(ours.mean, ours.cov, foreign.mean, foreign.cov)) < 1e-9
    with pytest.raises(DataError, match="sample count"):
        foreign.update(x)


def test_file_without_mu_sigma_is_refused(tmp_path):
    np.savez(tmp_path / "bad.npz", mean=np.zeros(3))
    with pytest.raises(DataError, match="mu, sigma"):
        FeatureStats.from_npz(tmp_path / "bad.npz")
    with pytest.raises(DataError, match="does not exist"):
        FeatureStats.from_npz(tmp_path / "missing.npz")


def test_protocol_mismatch_names_the_differing_field():
    a = FeatureStats(dict(PROTOCOL, data="x", n=10))
    b = FeatureStats(dict(PROTOCOL, resize="pil-bicubic", data="y", n=20))
    for s in (a, b):
        s.update(np.eye(3))
    with pytest.raises(ProtocolMismatch, match=r"resize \('tf-bilinear-299' vs 'pil-bicubic'\)") as err:
        check_comparable(a, b)
    # Data and sample counts may differ between the two sides of an FID; only the resize is named.
    assert "data" not in str(err.value) and "'n'" not in str(err.value)


def test_compare_scores_refuses_different_sample_counts():
    a, b = Scores(), Scores()
    a.add({"fid": 10.0}, {"metric": "fid", "n_fake": 10000})
    b.add({"fid": 12.0}, {"metric": "fid", "n_fake": 50000})
    with pytest.raises(ProtocolMismatch, match="n_fake"):
        compare_scores(a, b)
    c = Scores()
    c.add({"fid": 11.0}, {"metric": "fid", "n_fake": 10000})
    assert compare_scores(a, c) == {"fid": (10.0, 11.0)}


def test_dimension_mismatch_is_refused():
    a, b = FeatureStats(), FeatureStats()
    a.update(np.eye(3))
    b.update(np.eye(4))
    with pytest.raises(DataError, match="dimension 3 and 4"):
        check_comparable(a, b)
    with pytest.raises(DataError, match="dimension"):
        a.update(np.eye(4))
