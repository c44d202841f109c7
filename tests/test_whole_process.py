"""benchmarks/whole_process.py: what each variant runs with, and the start-up subtraction."""
import argparse

import pytest

from benchmarks import whole_process as wp


def test_only_the_bare_loop_gets_the_thresholds_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")  # the caller's own settings never leak in
    envs = {v: wp.command(v, "main", 50, 2, tmp_path, [])[1] for v in wp.VARIANTS}
    for v, env in envs.items():
        assert env["OMP_NUM_THREADS"] == "2"
        tuned = {k: env.get(k) for k in wp.TUNED_ENV}
        assert tuned == (wp.TUNED_ENV if v in ("bare", "bare-fresh") else dict.fromkeys(wp.TUNED_ENV)), v
        assert env.get("GANKIT_NO_MALLOPT") == ("1" if v == "gankit-nomallopt" else None), v
    argv = wp.command("gankit", "main", 50, 2, tmp_path, ["train.compile=true"])[0]
    assert argv[-4:] == ["train.threads=2", "train.compile=true", "--out", str(tmp_path)]
    assert "train.steps=50" in argv and "mnist_dcgan" in argv


def test_per_step_figures_subtract_the_short_run(monkeypatch, tmp_path):
    # start-up 3 s and 40 faults, then 0.02 s and 7 faults per step (gankit) or 0.01 s, 1 fault
    def fake(argv, env):
        steps = int(next(a for a in argv if a.startswith("train.steps=")).split("=")[1]) \
            if "gankit" in argv else int(argv[argv.index("--steps") + 1])
        per, faults = (0.02, 7) if "gankit" in argv else (0.01, 1)
        return {"wall": 3 + per * steps, "user": 2 + per * steps, "sys": 1.0, "cpu": 3 + per * steps,
                "minflt": 40.0 + faults * steps}

    monkeypatch.setattr(wp, "measure", fake)
    args = argparse.Namespace(variants="gankit,bare", rounds=2, steps=110, short_steps=10,
                              threads=1, set=[])
    res = wp.bench("toy", args, tmp_path)
    for v, (per, faults) in {"gankit": (0.02, 7), "bare": (0.01, 1)}.items():
        assert len(res["per_step"][v]) == 2
        for row in res["per_step"][v]:
            assert row["wall"] == pytest.approx(per) and row["minflt"] == pytest.approx(faults)
            assert row["sys"] == pytest.approx(0.0)
    table = wp.table([res], args)
    assert "| toy | gankit | 20.00 | 20.00 | 0.00 | 7 | 3.20 | 2.000 (2.000-2.000) | 2.000 |" in table


def test_unknown_names_and_a_short_run_as_long_as_the_long_one_are_refused():
    with pytest.raises(SystemExit):
        wp.parse_args(["--configs", "main,nope"])
    with pytest.raises(SystemExit):
        wp.parse_args(["--steps", "10", "--short-steps", "10"])


def test_every_config_has_a_bare_loop_and_the_toy_loop_does_gankits_work():
    assert set(wp.BARE_LOOPS) == set(wp.CONFIGS) >= {"main", "toy", "cgan", "cyclegan", "vae", "seqgan"}
    counts = wp.check("toy", 2)
    text = wp.check_table("toy", counts, 2)
    assert text.endswith("MATCH") and "MISMATCH" not in text, text
    assert counts["bare"]["params"] == counts["gankit"]["params"]
    assert counts["bare"]["grad"] == counts["gankit"]["grad"] == 2  # R1: one double backward a step


def test_bare_fresh_generates_for_g_whatever_the_preset_says(tmp_path):
    argv = wp.command("bare-fresh", "main", 50, 1, tmp_path, [])[0]
    assert argv[-2:] == ["--set", "model.reuse_fake=false"]
    assert "--set" not in wp.command("bare", "main", 50, 1, tmp_path, [])[0]
    assert not wp.bare_config("main", 5, ["model.reuse_fake=false"]).model.reuse_fake


def test_the_bare_loop_reuses_d_batch_as_gankit_does():
    plain = wp.check("main", 2, ["model.reuse_fake=false"])
    reused = wp.check("main", 2, ["model.reuse_fake=true"])
    assert wp.check_table("main", reused, 2).endswith("MATCH")
    for side in ("bare", "gankit"):  # one G forward a step less, nothing else
        assert plain[side]["forward"]["G"] == 4 and reused[side]["forward"]["G"] == 2, side
        assert plain[side]["forward"]["D"] == reused[side]["forward"]["D"] == 6, side
        assert plain[side]["backward"] == reused[side]["backward"] == 4, side
