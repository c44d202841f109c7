"""Each explain topic, run at its quick size, must show its claim in the numbers it writes.

The assertions recompute the claim from the raw arrays in the JSON where the JSON has them,
so a wrong summary number cannot make a test pass.
"""
import json
import math

import pytest
import torch

from gankit.cli import main
from gankit.explain import TOPICS, explanation, run_topic

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run each topic once (quick size), lazily, and keep its JSON."""
    out = tmp_path_factory.mktemp("explain")
    cache = {}

    def get(name):
        if name not in cache:
            record = run_topic(name, out, "quick")
            path = out / f"{name}.json"
            png = (out / f"{name}.png").read_bytes()
            assert png[:8] == PNG_MAGIC and 5_000 < len(png) < 300_000
            assert "{" not in explanation(name, record)  # every placeholder was filled
            cache[name] = json.loads(path.read_text())
        return cache[name]

    return get


def test_js_is_flat_while_wasserstein_grows(results):
    r = results("js-vs-wasserstein")
    theta = r["theta"]
    js = [v for t, v in zip(theta, r["js_estimate"]) if 1 <= t <= 4]
    assert (max(js) - min(js)) / (sum(js) / len(js)) < 0.05
    assert all(abs(v - math.log(2)) < 0.05 * math.log(2) for v in js)
    assert r["js_estimate"][theta.index(0.0)] < 0.05  # identical distributions: JS near 0
    w = dict(zip(theta, r["wasserstein_estimate"]))
    assert w[4.0] >= 3 * w[1.0] and w[1.0] > 0.5
    for t, gm, gw in zip(theta, r["grad_theta_minimax"], r["grad_theta_wgan_gp"]):
        if t >= 1:  # minimax G gets no signal; the WGAN G is pushed back toward x = 0
            assert abs(gm) < 1e-3 * abs(gw) and gw > 0.5


def test_minimax_gradient_vanishes_where_g_is_bad(results):
    r = results("saturating-vs-nonsaturating")
    d = torch.tensor(r["d_prob"])
    mm, ns = torch.tensor(r["grad_minimax"]), torch.tensor(r["grad_nonsaturating"])
    bad, good = d < 0.1, d > 0.9
    assert bad.sum() >= 20 and good.sum() >= 20
    assert ns[bad].mean() >= 10 * mm[bad].mean()
    assert mm[good].mean() > ns[good].mean()  # the comparison flips where D is fooled
    assert r["weight_grad_nonsaturating"] >= 10 * r["weight_grad_minimax"]


def test_reverse_kl_seeks_a_mode_and_kl_covers_both(results):
    r = results("mode-seeking-vs-covering")
    rkl, kl = r["fits"]["reverse-kl"], r["fits"]["kl"]
    assert abs(abs(rkl["mu"]) - 2.0) < 0.4 and rkl["sigma"] < 0.8
    assert min(rkl["mass_left"], rkl["mass_right"]) < 0.01
    assert abs(kl["mu"]) < 0.7 and kl["sigma"] > 1.5
    assert min(kl["mass_left"], kl["mass_right"]) > 0.2


def test_clipping_pins_weights_and_penalty_keeps_norms_near_one(results):
    r = results("clipping-vs-penalty")
    clip, gp = r["critics"]["clip"], r["critics"]["gp"]
    w_clip, w_gp = torch.tensor(clip["weights"]).abs(), torch.tensor(gp["weights"]).abs()
    assert w_clip.max() <= r["clip"] + 1e-7
    assert (w_clip >= 0.99 * r["clip"]).double().mean() > 0.9
    assert (w_gp >= 0.99 * w_gp.max()).double().mean() < 0.01
    n_clip, n_gp = torch.tensor(clip["grad_norms"]), torch.tensor(gp["grad_norms"])
    assert 0.8 < n_gp.median() < 1.25 and (n_gp - 1).abs().mean() < 0.3
    assert n_clip.median() < 0.05


def test_collapse_hops_dropping_never_learns_and_stable_run_covers(results):
    r = results("collapse-and-dropping")
    runs, start = r["runs"], r["warmup_steps"]

    def occupancy(name, after_warmup=False):
        occ = torch.tensor(runs[name]["occupancy"])
        return occ[torch.tensor(runs[name]["step"]) > start] if after_warmup else occ

    def covered(occ):  # per evaluation, the modes holding at least 5% of the samples
        return [frozenset(torch.nonzero(row >= 0.05).flatten().tolist()) for row in occ]

    # collapse: nearly everything near one mode, and that small set keeps changing (hopping)
    occ = occupancy("collapsing")
    assert occ.max(1).values.mean() > 0.8
    sets = covered(occ)
    assert max(len(c) for c in sets) <= 2
    assert sum(a != b for a, b in zip(sets, sets[1:])) >= 3
    assert len(frozenset().union(*sets)) >= 4  # it visits many modes in turn...
    assert not (occupancy("collapsing", True) >= 0.05).all(0).any()  # ...and holds none of them
    # dropping: after the warm-up, some modes hold ~0 share at every evaluation, others are
    # covered at every one, and the covered set stays put
    late = occupancy("dropping", True)
    assert len(late) >= 5
    dropped, held = (late < 0.01).all(0), (late >= 0.05).all(0)
    assert dropped.sum() >= 2 and held.sum() >= 2
    assert r["summary"]["dropping"]["dropped"] == torch.nonzero(dropped).flatten().tolist()
    assert len(set(covered(late))) <= 3 and max(runs["dropping"]["modes"]) <= 6
    # the stable run covers all 8 and drops none
    good = occupancy("stable")
    assert runs["stable"]["modes"][-1] == 8
    assert (good[-1] >= 0.05).all() and not (occupancy("stable", True) < 0.01).all(0).any()
    assert good.max(1).values.mean() < 0.3


def test_each_metric_has_a_blind_spot(results):
    s = results("evaluation-pitfalls")["scores"]
    honest, repeat, copier = s["honest"], s["one-per-class"], s["copier"]
    assert repeat["inception_score"] >= honest["inception_score"]  # the classifier is fooled
    assert repeat["fid"] >= 3 * honest["fid"]  # FID is not
    assert repeat["within_class_diversity"] < 0.05 * honest["within_class_diversity"]
    assert copier["fid"] <= honest["fid"]  # copying fools FID
    assert copier["near_copy_fraction"] >= 0.9 and honest["near_copy_fraction"] <= 0.05


def test_a_collapsed_generator_wins_on_afd_and_loses_on_fid(results):
    pytest.importorskip("animeface")
    r = results("evaluation-pitfalls")
    assert r["afd_collapsed"] == 1.0 and r["afd_honest"] < 0.5  # AFD is fooled
    assert r["fid_faces_collapsed"] > 10 * r["fid_faces_honest"]  # FID is not
    assert r["afd_protocol"]["size"] == 128


def test_sampling_gradients(results):
    r = results("non-differentiable-sampling")
    assert r["argmax_grad_max_abs"] == 0.0 and r["argmax_fd_changed_share"] == 0.0
    bias, var = r["gumbel_bias"], r["gumbel_variance"]
    assert bias[-1] > 5 * bias[0] and bias[-1] > 0.3
    assert var[0] > 100 * var[-1]
    standard_error = math.sqrt(r["reinforce_variance"] / r["samples"])
    assert r["reinforce_bias"] < 3 * standard_error  # unbiased up to sampling noise
    assert r["reinforce_variance"] > 10 * var[-1]
    assert r["reinforce_baseline_variance"] < r["reinforce_variance"]


def test_every_topic_has_a_test():
    names = {"js-vs-wasserstein", "saturating-vs-nonsaturating", "mode-seeking-vs-covering",
             "clipping-vs-penalty", "collapse-and-dropping", "evaluation-pitfalls",
             "non-differentiable-sampling"}
    assert set(TOPICS) == names


def test_cli_lists_topics_and_rejects_unknown_ones(capsys, tmp_path):
    assert main(["explain"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in TOPICS)
    assert main(["explain", "js-vs-wasserstien", "--out", str(tmp_path)]) == 2
    assert "did you mean 'js-vs-wasserstein'" in capsys.readouterr().err
    (tmp_path / "file").write_text("keep me")
    assert main(["explain", "non-differentiable-sampling", "--out", str(tmp_path / "file")]) == 2
    assert (tmp_path / "file").read_text() == "keep me"


def test_cli_runs_a_topic(capsys, tmp_path):
    assert main(["explain", "non-differentiable-sampling", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Gumbel-softmax" in out and "wrote" in out
    record = json.loads((tmp_path / "non-differentiable-sampling.json").read_text())
    assert record["size"] == "quick" and record["topic"] == "non-differentiable-sampling"
