import numpy as np
import pytest
import scipy.linalg
import torch

from gankit.errors import DataError
from gankit.metrics.frechet import frechet_distance


def reference_fid(mu1, s1, mu2, s2):
    """The textbook formula with scipy's matrix square root."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.real(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)))


def gaussian_stats(rng, n, d, scale=1.0, shift=0.0):
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * scale + shift
    return x.mean(0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("d", [8, 64])
def test_matches_sqrtm_reference_within_1e6_relative(d):
    rng = np.random.default_rng(d)
    mu1, s1 = gaussian_stats(rng, 4 * d, d)
    mu2, s2 = gaussian_stats(rng, 4 * d, d, scale=1.3, shift=0.2)
    ours, ref = frechet_distance(mu1, s1, mu2, s2), reference_fid(mu1, s1, mu2, s2)
    torch.testing.assert_close(torch.tensor(ours), torch.tensor(float(ref)), rtol=1e-6, atol=0)


def test_same_features_give_zero():
    rng = np.random.default_rng(0)
    mu, s = gaussian_stats(rng, 300, 64)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-6


def test_same_singular_covariance_gives_zero():
    # Fewer samples than dimensions: the covariance is singular and Cholesky fails.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 50))
    mu, s = x.mean(0), np.cov(x, rowvar=False)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-6


def test_closed_form_diagonal_covariances():
    mu1, mu2 = np.array([1.0, 2.0, 3.0]), np.array([0.0, 2.0, 5.0])
    a, b = np.array([4.0, 9.0, 1.0]), np.array([1.0, 16.0, 0.25])
    # ||mu1 - mu2||^2 = 1 + 0 + 4; sum (sqrt a - sqrt b)^2 = 1 + 1 + 0.25
    expected = 5.0 + 2.25
    torch.testing.assert_close(torch.tensor(frechet_distance(mu1, np.diag(a), mu2, np.diag(b))),
                               torch.tensor(float(expected)), rtol=1e-12, atol=1e-12)


def test_closed_form_commuting_covariances():
    # S1 = Q diag(a) Q^T and S2 = Q diag(b) Q^T share eigenvectors, so
    # tr sqrt(S1 S2) = sum sqrt(a b) and the distance is ||mu||^2 + sum (sqrt a - sqrt b)^2.
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    a, b = rng.uniform(0.5, 3.0, 6), rng.uniform(0.5, 3.0, 6)
    mu = rng.standard_normal(6)
    expected = mu @ mu + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = frechet_distance(mu, q @ np.diag(a) @ q.T, np.zeros(6), q @ np.diag(b) @ q.T)
    torch.testing.assert_close(torch.tensor(got), torch.tensor(float(expected)), rtol=1e-10, atol=1e-12)


def test_bad_shapes_and_values_are_refused():
    with pytest.raises(DataError, match="one D"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(DataError, match="NaN"):
        frechet_distance(np.zeros(2), np.eye(2) * np.nan, np.zeros(2), np.eye(2))
