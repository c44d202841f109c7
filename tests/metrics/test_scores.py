import math

import numpy as np
import pytest
import torch

from gankit.errors import DataError
from gankit.metrics.classifier import (classifier_quality_diversity, inception_score, joint_labels,
                                       mode_counts)
from gankit.metrics.mmd import kid


def plain_kid(x, y):
    """Unbiased MMD^2 with the cubic kernel, written as loops."""
    m, d = len(x), len(x[0])

    def k(a, b):
        return (sum(ai * bi for ai, bi in zip(a, b)) / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_direct_computation():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((12, 3)), rng.standard_normal((12, 3)) + 0.5
    # Subsets as large as the sets are the whole sets, only reordered: every subset agrees.
    mean, std = kid(a, b, subsets=3, subset_size=12)
    torch.testing.assert_close(torch.tensor(mean), torch.tensor(plain_kid(a.tolist(), b.tolist())),
                               rtol=1e-10, atol=1e-12)
    assert std < 1e-12


def test_kid_subsets_vary_and_are_seeded():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((40, 3)), rng.standard_normal((40, 3))
    first, again = kid(a, b, subsets=5, subset_size=10, seed=3), kid(a, b, subsets=5, subset_size=10, seed=3)
    assert first == again and first[1] > 0


def test_kid_refuses_mismatched_dimensions():
    with pytest.raises(DataError, match="one dimension"):
        kid(np.zeros((5, 2)), np.zeros((5, 3)))


def test_inception_score_of_uniform_one_hot_is_number_of_classes():
    probs = torch.eye(4).repeat(3, 1)  # each class 3 times, each split holds all 4 classes
    mean, std = inception_score(probs, splits=3)
    torch.testing.assert_close(torch.tensor(mean), torch.tensor(4.0))
    assert std < 1e-12


def test_inception_score_of_constant_predictions_is_one():
    probs = torch.tensor([[0.2, 0.3, 0.5]]).repeat(10, 1)
    mean, _ = inception_score(probs, splits=2)
    torch.testing.assert_close(torch.tensor(mean), torch.tensor(1.0))


def test_inception_score_and_quality_by_hand():
    probs = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    # marginal (0.75, 0.25); KL rows: 0.5 ln(0.5/0.75) + 0.5 ln(0.5/0.25), and ln(1/0.75)
    kl = [0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(2.0), math.log(1 / 0.75)]
    mean, _ = inception_score(probs, splits=1)
    torch.testing.assert_close(torch.tensor(mean), torch.tensor(math.exp(sum(kl) / 2)))
    q = classifier_quality_diversity(probs)
    expected = {"confidence": 0.75, "entropy": math.log(2) / 2,
                "diversity": -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)), "diversity_max": math.log(2)}
    for key, value in expected.items():
        torch.testing.assert_close(torch.tensor(q[key]), torch.tensor(value))
    # On one split the Inception Score is exp(diversity - mean entropy).
    torch.testing.assert_close(torch.tensor(mean), torch.tensor(math.exp(q["diversity"] - q["entropy"])))


def test_probabilities_are_checked():
    with pytest.raises(DataError, match="softmax"):
        inception_score(torch.tensor([[2.0, -1.0]]), splits=1)
    with pytest.raises(DataError, match="splits"):
        inception_score(torch.eye(2), splits=3)


def test_mode_counts_by_hand():
    result = mode_counts(torch.tensor([0, 0, 1, 3]), 4)
    # histogram (1/2, 1/4, 0, 1/4): KL = 1/2 ln(2) + 1/4 ln(1) + 1/4 ln(1)
    assert result["modes"] == 3
    torch.testing.assert_close(torch.tensor(result["kl"]), torch.tensor(0.5 * math.log(2)))
    uniform = mode_counts(torch.arange(10).repeat(3), 10)
    assert uniform == {"modes": 10, "kl": 0.0}
    with pytest.raises(DataError, match=r"\[0, 4\)"):
        mode_counts(torch.tensor([4]), 4)


def test_joint_labels_of_stacked_digits():
    assert joint_labels(torch.tensor([[1, 2, 3], [0, 0, 7], [9, 9, 9]])).tolist() == [123, 7, 999]
