import torch
from torch.utils.data import Dataset

from gankit.data.info import DataInfo
from gankit.data.source import ResidentSource, StreamingSource, epoch_order

INFO = DataInfo("vector", (1,))


def take(source, k):
    return [source.next_batch()["x"].clone() for _ in range(k)]


def test_resident_order_is_epoch_permutations_without_ragged_tail():
    x = torch.arange(10.0).unsqueeze(1)
    src = ResidentSource({"x": x}, INFO, batch_size=4, seed=3, device=torch.device("cpu"))
    batches = take(src, 4)
    p0, p1 = epoch_order(10, 3, 0), epoch_order(10, 3, 1)
    expected = [p0[0:4], p0[4:8], p1[0:4], p1[4:8]]  # 2 items of epoch 0 are dropped
    for got, idx in zip(batches, expected):
        torch.testing.assert_close(got.squeeze(1), idx.float())
    assert src.state_dict() == {"epoch": 1, "pos": 8}


def test_resident_resume_continues_the_same_order():
    x = torch.arange(50.0).unsqueeze(1)
    a = ResidentSource({"x": x}, INFO, 8, seed=0, device=torch.device("cpu"))
    take(a, 5)
    b = ResidentSource({"x": x}, INFO, 8, seed=0, device=torch.device("cpu"))
    b.load_state_dict(a.state_dict())
    for u, v in zip(take(a, 9), take(b, 9)):
        torch.testing.assert_close(u, v)


def test_ranks_split_the_global_batch():
    x = torch.arange(40.0).unsqueeze(1)
    single = ResidentSource({"x": x}, INFO, 8, seed=1, device=torch.device("cpu"))
    ranks = [ResidentSource({"x": x}, INFO, 8, seed=1, device=torch.device("cpu"), rank=r, world=2)
             for r in range(2)]
    for _ in range(7):
        whole = single.next_batch()["x"]
        parts = [r.next_batch()["x"] for r in ranks]
        assert parts[0].shape[0] == 4
        torch.testing.assert_close(torch.cat(parts), whole)


class Squares(Dataset):
    def __len__(self):
        return 13

    def __getitem__(self, i):
        return {"x": torch.tensor([float(i * i)])}


def test_streaming_matches_resident_order_and_resumes():
    x = torch.tensor([[float(i * i)] for i in range(13)])
    res = ResidentSource({"x": x}, INFO, 4, seed=5, device=torch.device("cpu"))
    st = StreamingSource(Squares(), INFO, 4, seed=5, device=torch.device("cpu"), workers=0)
    first = take(st, 3)
    for u, v in zip(first, take(res, 3)):
        torch.testing.assert_close(u, v)
    again = StreamingSource(Squares(), INFO, 4, seed=5, device=torch.device("cpu"), workers=0)
    again.load_state_dict(st.state_dict())
    for u, v in zip(take(st, 6), take(again, 6)):
        torch.testing.assert_close(u, v)
