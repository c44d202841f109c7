import base64
import io
import re

import pytest
from PIL import Image

from gankit.cli import main
from gankit.viz.report import Report, mean_std, write_report
from gankit.viz.runs import read_run
from gankit.viz.svg import HEIGHT, LEFT, RIGHT, TOP, BOTTOM, WIDTH, line_chart, nice_ticks


def test_tick_labels_share_one_style_per_axis():
    from gankit.viz.svg import tick_labels

    # steps: no 5e+03 beside 1.00e+04
    assert tick_labels(nice_ticks(0, 12000, integer=True)) == ["0", "5000", "10000"]
    assert tick_labels([0.0, 0.25, 0.5]) == ["0.00", "0.25", "0.50"]
    assert tick_labels([0, 1e6, 2e6, 3e6]) == ["0", "1e6", "2e6", "3e6"]
    assert tick_labels([0.0002, 0.0003]) == ["2e-4", "3e-4"]
    assert tick_labels([2.5e6, 5e6]) == ["2.5e6", "5.0e6"]


def test_nice_ticks_are_round_and_inside():
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(13, 97) == [20, 40, 60, 80]
    assert nice_ticks(199, 201, integer=True) == [199, 200, 201]  # no 199.5 on a step axis
    assert nice_ticks(3, 3) == [3]


def test_line_chart_maps_the_extremes_to_the_plot_corners():
    svg = line_chart("loss/D", [("a", "#000", [(0, 1.0), (10, 3.0)]), ("b", "#111", [(5, 2.0)])])
    coords = re.search(r'points="([^"]+)"', svg).group(1).split()
    assert coords == [f"{LEFT:.1f},{HEIGHT - BOTTOM:.1f}", f"{WIDTH - RIGHT:.1f},{TOP:.1f}"]
    # the one-point series is a dot in the middle of both axes
    cx, cy = map(float, re.search(r'cx="([\d.]+)" cy="([\d.]+)"', svg).groups())
    assert cx == pytest.approx((LEFT + WIDTH - RIGHT) / 2, abs=0.06)
    assert cy == pytest.approx((TOP + HEIGHT - BOTTOM) / 2, abs=0.06)
    assert line_chart("empty", []) == ""


def test_mean_std_is_the_sample_std():
    assert mean_std([6.0, 8.0]) == (7.0, pytest.approx(2 ** 0.5))
    assert mean_std([5.0]) == (5.0, 0.0)


def _cells(html):
    """The table's rows as cell texts (tags dropped, entities decoded, '*' marking bold)."""
    from html import unescape

    rows = re.findall(r"<tr>(.*?)</tr>", html)
    cell = lambda c: unescape(re.sub(r"<[^>]+>", "", c.replace('<b class="best">', "*"))).replace("\xa0", "").strip()
    return [[cell(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r)] for r in rows]


def _images(html):
    return re.findall(r'src="data:image/png;base64,([^"]+)"', html)


def test_single_run_report_is_self_contained(tmp_path, make_run):
    run = make_run("r", samples={s: (s, 0, 0) for s in (10, 20, 30)}, eval_pictures=("toy_scatter.png",))
    out = write_report([run], tmp_path / "out" / "report.html")
    html = out.read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert 'name="viewport"' in html
    pictures = [Image.open(io.BytesIO(base64.b64decode(b))) for b in _images(html)]
    # three sample grids in step order (red channel = step), then the scatter
    assert [p.getpixel((0, 0))[0] for p in pictures] == [10, 20, 30, 90]
    assert html.count('<svg class="chart"') == 3  # loss/D, loss/G, steps_per_s
    assert "train:\n  seed: 0\n  steps: 100\n</pre>" in html  # the whole config of a single run


def test_comparison_groups_seeds_with_mean_and_std(tmp_path, make_run):
    runs = [make_run("h0", "hinge", 0, modes=6.0, kl=0.3), make_run("h1", "hinge", 1, modes=8.0, kl=0.1),
            make_run("w0", "wgan", 0, modes=5.0, kl=0.05)]
    report = Report([read_run(r) for r in runs])
    assert list(report.groups) == ["loss.name=hinge", "loss.name=wgan"]
    head, *rows = _cells(report.metrics())
    assert head == ["setting", "mode_kl ↓", "modes ↑"]
    # modes: higher is better, hinge's mean 7 beats wgan's 5; mode_kl: lower is better, wgan wins
    # each mean to the decimal place of its std's second digit
    assert rows == [["loss.name=hinge", "0.20 ± 0.14", "*7.0 ± 1.4"], ["loss.name=wgan", "*0.05", "5"]]
    config = report.config()
    assert "<td>loss.name</td>" in config and "<td>train.seed</td>" in config
    assert "data.source" not in config.split("<details>")[0]
    # seeds of one setting share a colour, the other setting has another
    colours = [report.colour(i) for i in range(3)]
    assert colours[0] == colours[1] != colours[2]


def test_samples_strip_keeps_evenly_spaced_pictures_and_the_last(tmp_path, make_run):
    run = make_run("r", samples={s: (s, 0, 0) for s in range(10, 101, 10)})
    html = write_report([run], tmp_path / "r.html", max_pictures=4).read_text()
    captions = re.findall(r"<figcaption>step (\d+)</figcaption>", html)
    assert captions == ["10", "40", "70", "100"]


def test_the_final_grid_comes_first_and_the_strip_wraps_instead_of_scrolling(tmp_path, make_run):
    import numpy as np
    from PIL import Image

    run = make_run("r", samples={s: (s, 0, 0) for s in range(10, 101, 10)})
    Image.fromarray(np.full((20, 30, 3), 77, np.uint8)).save(run / "samples" / "final.png")
    html = write_report([run], tmp_path / "r.html", max_pictures=4).read_text()
    captions = re.findall(r"<figcaption>([^<]+)</figcaption>", html)
    # the final grid, then three of the step grids (step 100's repeats the final one)
    assert captions == ["final (step 100)", "step 10", "step 50", "step 90"]
    assert Image.open(io.BytesIO(base64.b64decode(_images(html)[0]))).getpixel((0, 0))[0] == 77
    strip = re.search(r"\.strip\{([^}]*)\}", html).group(1)
    assert "flex-wrap:wrap" in strip and "overflow-x" not in strip


def test_a_broken_picture_is_named_not_embedded(tmp_path, make_run):
    run = make_run("r", samples={10: (1, 2, 3)})
    (run / "samples" / "step_0000020.png").write_bytes(b"not a png")
    html = write_report([run], tmp_path / "r.html").read_text()
    assert len(_images(html)) == 1 and "step_0000020.png: not a readable PNG" in html


def test_cli_report_and_bad_input_write_nothing(tmp_path, make_run, capsys):
    run = make_run("r")
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    out.write_text("previous")
    assert main(["report", str(run), str(tmp_path / "nope"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is not a run folder" in err and "Traceback" not in err
    assert out.read_text() == "previous"  # the old report is not lost
    assert not list(tmp_path.glob("*.tmp"))


def test_thumbnails_shrink_wide_pictures_only(tmp_path, make_run):
    import numpy as np

    run = make_run("r", samples={10: (1, 2, 3)})  # 30 px wide: kept as it is
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 600, 3), np.uint8)).save(
        run / "samples" / "step_0000020.png")
    full = write_report([run], tmp_path / "full.html").read_text()
    small = write_report([run], tmp_path / "small.html", thumb=120).read_text()
    sizes = [Image.open(io.BytesIO(base64.b64decode(b))).size for b in _images(small)]
    assert sizes == [(30, 20), (120, 60)]
    assert len(small) < len(full) / 4


def test_gankit_eval_scores_are_final_not_curve_points_and_keep_their_protocol(tmp_path, make_run):
    import json

    runs = [make_run("a", modes=6.0), make_run("b", loss="wgan", modes=5.0)]
    with open(runs[0] / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 100, "source": "gankit eval", "n": 10000, "metrics/modes": 7,
                            "protocol": {"toy": {"metric": "toy", "n_fake": 10000}}}) + "\n")
    report = Report([read_run(r) for r in runs])
    assert read_run(runs[0]).curves().get("metrics/modes") is None  # only final records: no curve
    assert _cells(report.metrics())[1:] == [["a", "0.1", "*7"], ["b", "0.1", "5"]]
    assert "modes: gankit eval, n=10000, training." in report.metrics()
    assert '<li>toy (a): <code>{&quot;metric&quot;: &quot;toy&quot;, &quot;n_fake&quot;: 10000}</code></li>' in report.metrics()


def test_sequence_runs_show_their_last_sentences(tmp_path, make_run):
    run = make_run("seq")
    (run / "samples").mkdir()
    (run / "samples" / "step_0000010.txt").write_text("old words\n")
    (run / "samples" / "step_0000020.txt").write_text("".join(f"line {i} <b>\n" for i in range(20)))
    html = write_report([run], tmp_path / "s.html").read_text()
    assert "line 11 &lt;b&gt;" in html and "line 12" not in html and "old words" not in html
    assert "<figcaption>step 20</figcaption>" in html


def test_labels_are_the_shortest_distinct_path_endings(tmp_path, make_run):
    from gankit.viz.report import _labels

    runs = [read_run(make_run(f"{loss}/seed{k}", loss, k)) for loss in ("hinge", "wgan") for k in (0, 1)]
    assert _labels(runs) == ["hinge/seed0", "hinge/seed1", "wgan/seed0", "wgan/seed1"]
    assert _labels(runs[:1] + [read_run(make_run("other"))]) == ["seed0", "other"]
