"""Reference-statistics cache under concurrent writers, and hostile or damaged .npz files."""
import multiprocessing
import threading

import numpy as np
import pytest

from gankit.errors import DataError
from gankit.metrics.cache import StatsCache
from gankit.metrics.stats import FeatureStats, read_npz

KEY = {"data": "folder", "extractor": "tiny", "n": 8}


def stats_of(value: float, dim: int = 16) -> tuple[FeatureStats, np.ndarray]:
    features = np.full((8, dim), value, np.float32) + np.arange(dim, dtype=np.float32)
    mu = features.mean(0).astype(np.float64)
    return FeatureStats.from_moments(mu, np.eye(dim) * value, n=8, protocol={"who": value}), features


def assert_whole_entry_of_one_writer(cache: StatsCache, values) -> float:
    """The entry loads and is exactly one writer's (mean, covariance, features)."""
    stats, features = cache.load(KEY, need_features=True)
    value = float(stats.protocol["who"])
    assert value in values
    expected, expected_features = stats_of(value)
    np.testing.assert_array_equal(stats.mean, expected.mean)
    np.testing.assert_array_equal(stats.cov, expected.cov)
    np.testing.assert_array_equal(features, expected_features)
    return value


def test_two_writers_that_overlap_leave_one_whole_file(tmp_path, monkeypatch):
    # Both writers finish their temporary files before either renames. With one shared
    # temporary name the second writer overwrote the first one's file and one rename failed.
    barrier = threading.Barrier(2)
    real_savez = np.savez

    def savez_then_wait(file, **arrays):
        real_savez(file, **arrays)
        barrier.wait(timeout=20)

    monkeypatch.setattr(np, "savez", savez_then_wait)
    cache = StatsCache(tmp_path)
    errors = []

    def write(value):
        try:
            cache.save(dict(KEY), *stats_of(value))
        except Exception as e:  # noqa: BLE001 -- collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(v,)) for v in (1.0, 2.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    monkeypatch.setattr(np, "savez", real_savez)
    assert_whole_entry_of_one_writer(cache, (1.0, 2.0))
    assert [p.name for p in (tmp_path / "stats").iterdir()] == [cache.path(KEY).name]  # no temporaries


def _hammer(root: str, value: float, rounds: int) -> None:
    cache = StatsCache(root)
    for _ in range(rounds):
        cache.save(dict(KEY), *stats_of(value))


def test_two_processes_writing_one_entry_never_leave_a_mix(tmp_path):
    cache = StatsCache(tmp_path)
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_hammer, args=(str(tmp_path), v, 40)) for v in (3.0, 5.0)]
    for w in writers:
        w.start()
    seen = set()
    while any(w.is_alive() for w in writers):
        if cache.path(KEY).exists():  # a reader in the middle of the writes
            seen.add(assert_whole_entry_of_one_writer(cache, (3.0, 5.0)))
    for w in writers:
        w.join()
        assert w.exitcode == 0
    seen.add(assert_whole_entry_of_one_writer(cache, (3.0, 5.0)))
    assert seen <= {3.0, 5.0}
    assert len(list((tmp_path / "stats").iterdir())) == 1


def test_a_damaged_cache_entry_is_a_miss_and_is_replaced(tmp_path):
    cache = StatsCache(tmp_path)
    path = cache.save(dict(KEY), *stats_of(1.0))
    path.write_bytes(path.read_bytes()[:100])  # cut short, as by a crash of an older version
    with pytest.warns(UserWarning, match="damaged cache entry"):
        assert cache.load(KEY, need_features=True) is None
    cache.save(dict(KEY), *stats_of(2.0))
    assert assert_whole_entry_of_one_writer(cache, (2.0,)) == 2.0


class _Boom:
    """Unpickling this object would create a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_statistics_holding_pickled_objects_are_refused_without_running_them(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "hostile.npz"
    mu = np.empty(1, dtype=object)
    mu[0] = _Boom(marker)
    np.savez(path, mu=mu, sigma=np.eye(1))
    with pytest.raises(DataError, match="cannot read statistics file .*hostile.npz"):
        read_npz(path)
    assert not marker.exists()
