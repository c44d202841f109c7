import sys

import pytest
import torch

from gankit.errors import DataError
from gankit.metrics import anime


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


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # animeface calls Image.getdata
def test_noise_has_no_anime_face():
    pytest.importorskip("animeface")
    noise = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert anime.anime_face_rate(noise) == 0.0
