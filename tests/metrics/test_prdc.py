import numpy as np
import pytest
import torch

from gankit.errors import DataError
from gankit.metrics import prdc
from gankit.metrics.prdc import density_coverage, knn_radii, precision_recall

# 1-D points, k = 1.
# real 0, 1, 2, 3, 6: nearest-neighbour radii 1, 1, 1, 1, 3
# fake 0.5, 2.9, 10, 10.5: radii 2.4, 2.4, 0.5, 0.5
REAL = torch.tensor([[0.0], [1.0], [2.0], [3.0], [6.0]])
FAKE = torch.tensor([[0.5], [2.9], [10.0], [10.5]])


def test_knn_radii():
    torch.testing.assert_close(knn_radii(REAL.double(), 1), torch.tensor([1.0, 1, 1, 1, 3], dtype=torch.float64))
    torch.testing.assert_close(knn_radii(REAL.double(), 2), torch.tensor([2.0, 1, 1, 2, 4], dtype=torch.float64))


def test_precision_recall_by_hand():
    # precision: 0.5 and 2.9 lie in real balls, 10 and 10.5 do not (6's ball ends at 9) -> 2/4
    # recall: reals 0, 1, 2, 3 lie in the balls of 0.5 or 2.9; 6 is 3.1 from 2.9 (> 2.4) -> 4/5
    result = precision_recall(REAL, FAKE, k=1)
    torch.testing.assert_close(torch.tensor([result["precision"], result["recall"]]),
                               torch.tensor([0.5, 0.8]))


def test_density_coverage_by_hand():
    # 0.5 lies in the balls of 0 and 1; 2.9 in those of 2 and 3; 10 and 10.5 in none
    # density = (2 + 2 + 0 + 0) / (k * 4) = 1; coverage: every real ball but 6's holds a fake
    result = density_coverage(REAL, FAKE, k=1)
    torch.testing.assert_close(torch.tensor([result["density"], result["coverage"]]),
                               torch.tensor([1.0, 0.8]))


def test_identical_sets_are_perfect():
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    assert precision_recall(x, x, k=3) == {"precision": 1.0, "recall": 1.0}
    dc = density_coverage(x, x, k=5)
    assert dc["coverage"] == 1.0 and dc["density"] >= 1.0


def test_blocks_give_the_same_answer(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    real, fake = torch.randn(60, 3, generator=gen), torch.randn(45, 3, generator=gen) * 1.3
    whole = {**precision_recall(real, fake), **density_coverage(real, fake)}
    monkeypatch.setattr(prdc, "_BLOCK_ELEMENTS", 100)  # blocks of one or two rows
    blocked = {**precision_recall(real, fake), **density_coverage(real, fake)}
    assert whole == blocked


def test_bad_input():
    with pytest.raises(DataError, match="dimension"):
        precision_recall(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(DataError, match="N >= 4"):
        precision_recall(np.zeros((3, 2)), np.zeros((5, 2)), k=3)
