import pytest
import torch
from torch.testing import assert_close

from gankit.objectives import l1, l1_loss, mse


def test_l1_and_mse_by_hand():
    a = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    b = torch.tensor([[0.0, 1.0], [0.5, 1.0]])
    # differences 1, -3, 0, 2
    assert_close(l1(a, b), torch.tensor((1 + 3 + 0 + 2) / 4))
    assert_close(l1_loss(a, b), torch.tensor(1.5))
    assert_close(mse(a, b), torch.tensor((1 + 9 + 0 + 4) / 4))


def test_shapes_must_match_rather_than_broadcast():
    with pytest.raises(ValueError, match="one shape"):
        l1(torch.zeros(2, 3, 4, 4), torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="one shape"):
        mse(torch.zeros(3), torch.zeros(1))
