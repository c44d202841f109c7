import sys

import numpy as np
import pytest
import torch

from gankit.data.faces import load_faces
from gankit.errors import DataError
from gankit.metrics import anime
from gankit.metrics.compute import check_metric_names, compute_metrics
from gankit.data.info import DataInfo


@pytest.fixture(autouse=True)
def fresh_detector_cache():
    anime.load_detector.cache_clear()
    yield
    anime.load_detector.cache_clear()


def test_rate_with_a_given_detector():
    images = torch.cat([torch.ones(3, 3, 8, 8), -torch.ones(1, 3, 8, 8)])

    def bright_detector(im):  # a "face" wherever the image is white
        return [object()] if im.getpixel((0, 0)) == (255, 255, 255) else []

    assert anime.anime_face_rate(images, bright_detector) == 0.75
    assert anime.anime_face_rate(iter(images.split(1)), bright_detector) == 0.75


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "animeface", None)  # makes `import animeface` fail
    with pytest.raises(DataError, match="pip install animeface"):
        anime.anime_face_rate(torch.zeros(1, 3, 8, 8))


def test_noise_has_no_anime_face():
    pytest.importorskip("animeface")
    noise = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert anime.anime_face_rate(noise) == 0.0


def test_the_detector_finds_the_drawn_faces_with_this_pillow():
    """animeface.detect(im) finds nothing with Pillow >= 12 (it reads Pillow's private struct in
    the old layout); with Pillow 11.3 it finds all 20 of these at 128 px, and so must we."""
    pytest.importorskip("animeface")
    faces = load_faces(20)[0]
    assert anime.anime_face_rate(faces, anime.load_detector(128)) == 1.0
    found = anime.load_detector(128)(anime.to_pil(faces[:1])[0])
    x, y, w, h = found[0]["face_box"]  # the face box lies inside the 128-px frame, face-sized
    assert 0 <= x and 0 <= y and x + w <= 128 and y + h <= 128 and w >= 40


def test_the_detector_reads_our_pixels_not_pillows():
    """A face pasted at a known place is found there: the buffer handed over is the image."""
    pytest.importorskip("animeface")
    from animeface import _nvxs

    face = np.asarray(anime.known_positives(1)[0].resize((128, 128)))
    canvas = np.full((128, 256, 3), 255, dtype=np.uint8)
    canvas[:, 128:] = face
    found = anime.detect_rgb(_nvxs.detect, canvas)
    assert len(found) == 1 and found[0]["face_box"][0] >= 128  # in the right half, not the left


def test_a_broken_detector_is_refused_at_first_use(monkeypatch):
    pytest.importorskip("animeface")
    from animeface import _nvxs

    monkeypatch.setattr(_nvxs, "detect", lambda core: [])  # what Pillow 12 made of it
    with pytest.raises(DataError, match="finds no face in 8 known positives"):
        anime.load_detector()
    with pytest.raises(DataError, match="known positives"):  # and at start-up, by name
        check_metric_names(["fid", "afd"], DataInfo("image", (3, 64, 64), name="faces"))


def test_a_size_where_afd_means_nothing_is_refused():
    pytest.importorskip("animeface")
    with pytest.raises(DataError, match="at 24 px"):
        anime.load_detector(24)


def test_the_protocol_is_stored_with_the_score():
    pytest.importorskip("animeface")
    faces = load_faces(4)[0]
    info = DataInfo("image", (3, 64, 64), name="faces")
    scores = compute_metrics(["afd"], [faces], [faces], info, use_cache=False)
    proto = scores.protocol["afd"]
    assert proto["size"] == anime.DEFAULT_SIZE and proto["resize"] == "pil-bicubic"
    assert proto["detector"].startswith("animeface-")
    assert scores["afd_real"] == scores["afd"] == 1.0  # same images: the ceiling is reached
    no_real = compute_metrics(["afd"], [faces], None, info, use_cache=False)
    assert "afd_real" not in no_real and "not measured" in no_real.protocol["afd"]["ceiling"]


def test_afd_never_comes_without_fid():
    assert anime.with_fid(["afd"]) == ["afd", "fid"]
    assert anime.with_fid(["kid", " AFD", "fid"]) == ["kid", "afd", "fid"]
    assert anime.with_fid(["kid"]) == ["kid"]
    # the digit classifier's readable share is maxed out by noise: never alone either
    assert anime.with_fid(["readable"]) == ["readable", "fid"]
    assert anime.with_fid(["readable", "afd"]) == ["readable", "fid", "afd"]


def test_dry_run_and_start_up_refuse_afd_without_a_detector(monkeypatch, tmp_path):
    """The error comes before training, not at the first evaluation (step 10,000, hours in)."""
    from gankit.config import load_config
    from gankit.training.trainer import Trainer, check_config

    monkeypatch.setitem(sys.modules, "animeface", None)
    cfg = load_config("faces32", ["data.source=faces50", "eval.metrics=[afd]", "eval.every=10000"])
    with pytest.raises(DataError, match="pip install animeface"):
        check_config(cfg)  # what gankit train --dry-run runs
    with pytest.raises(DataError, match="pip install animeface"):
        Trainer(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing was started
