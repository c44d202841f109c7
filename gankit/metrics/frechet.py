"""The Frechet distance between two Gaussians, through eigenvalues instead of ``sqrtm``.

    d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

The eigenvalues of S1 S2 are those of the symmetric positive semi-definite matrix
L^T S2 L, where S1 = L L^T (L a Cholesky factor or the symmetric square root of S1), so
tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of a symmetric matrix.
That needs one factorisation and one symmetric eigenvalue solve (values only), several
times faster than ``scipy.linalg.sqrtm``'s Schur route, and never produces the spurious
imaginary parts ``sqrtm`` returns for near-singular covariances.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from gankit.errors import DataError


def _left_factor(s: np.ndarray) -> np.ndarray:
    """A matrix L with L L^T = s: Cholesky when s is positive definite, else the PSD root."""
    try:
        return np.linalg.cholesky(s)
    except np.linalg.LinAlgError:
        # Fewer samples than dimensions make s singular; its symmetric root still works.
        w, v = scipy.linalg.eigh(s)
        return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """tr((s1 s2)^(1/2)) for symmetric positive semi-definite s1 and s2."""
    factor = _left_factor(s1)
    inner = factor.T @ s2 @ factor
    inner = (inner + inner.T) / 2  # remove the rounding asymmetry before eigvalsh
    eig = scipy.linalg.eigvalsh(inner, check_finite=False)
    return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """The squared Frechet distance between N(mu1, s1) and N(mu2, s2) (what FID reports)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(s1, np.float64), np.asarray(s2, np.float64)
    d = mu1.size
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise DataError(f"Frechet distance needs means [D] and covariances [D, D] of one D; got "
                        f"{mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}")
    for name, arr in (("mu1", mu1), ("s1", s1), ("mu2", mu2), ("s2", s2)):
        if not np.isfinite(arr).all():
            raise DataError(f"{name} holds NaN or infinite values; the features are broken")
    diff = mu1 - mu2
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2)
    # Rounding can leave a distance of zero a hair below it.
    return float(max(value, 0.0))
