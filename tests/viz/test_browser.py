"""The report in a real browser: headless Chromium (Debian's ``chromium`` package).

Skipped where no Chromium is installed, unless GANKIT_REQUIRE_BROWSER=1 (set by .ci/run,
which installs it): there a missing browser fails the test instead of hiding it."""
import io
import os

import numpy as np
import pytest
from PIL import Image

from gankit.training.trainer import Trainer
from gankit.viz.browser import check_page, find_chromium
from gankit.viz.report import write_report
from tests.conftest import tiny_toy_config

if find_chromium() is None:
    if os.environ.get("GANKIT_REQUIRE_BROWSER") == "1":
        raise RuntimeError("GANKIT_REQUIRE_BROWSER=1 but no chromium is installed (apt-get install chromium)")
    pytest.skip("no chromium installed", allow_module_level=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A comparison report of two short real runs (two objectives)."""
    root = tmp_path_factory.mktemp("runs")
    runs = []
    for loss in ("nonsaturating", "hinge"):
        cfg = tiny_toy_config(**{"loss.name": loss, "train.steps": 16, "train.sample_every": 8,
                                 "eval.metrics": "[toy]", "eval.every": 8, "eval.n_samples": 200})
        Trainer(cfg, root / loss).fit()
        runs.append(root / loss)
    return write_report(runs, root / "report.html")


def _non_blank(png: bytes) -> tuple[float, int]:
    """(share of pixels that are not white, number of distinct colours)."""
    arr = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return float((arr.min(-1) < 250).mean()), len(np.unique(arr.reshape(-1, 3), axis=0))


@pytest.mark.parametrize("width", [1000, 390])  # a desktop window and a phone
def test_report_renders_in_chromium(report, width):
    html = report.read_text()
    seen = check_page(report, width=width, height=900)
    assert seen.errors == []
    # every picture of the file decodes: 2 runs x (2 sample grids + toy scatter)
    assert len(seen.images) == html.count("<img ") == 6
    assert all(i["ok"] and i["w"] > 100 and i["h"] > 100 for i in seen.images), seen.images
    # one chart per curve, each drawn at a real size with both runs' lines of non-zero length
    titles = [c["title"] for c in seen.charts]
    assert {"loss/D", "loss/G", "metrics/modes"} <= set(titles)
    for chart in seen.charts:
        assert chart["w"] > 250 and chart["h"] > 120
        if chart["title"].startswith("loss/"):
            assert len(chart["lines"]) == 2 and min(chart["lines"]) > 10
    assert seen.page_width <= seen.view_width  # no sideways scrolling, even on a phone
    share, colours = _non_blank(seen.screenshot)
    assert share > 0.02 and colours > 20


def test_the_check_catches_broken_pages(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA">'
                    '<div style="width:3000px">wide</div><script>console.error("boom")</script></body></html>')
    seen = check_page(page, width=400, height=300)
    assert [i["ok"] for i in seen.images] == [False]
    assert any("boom" in e for e in seen.errors)
    assert seen.page_width > seen.view_width
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    share, colours = _non_blank(check_page(blank, width=400, height=300).screenshot)
    assert share == 0.0 and colours == 1  # the non-blank check can fail too
