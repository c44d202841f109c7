"""`gankit eval RUN` on a run of every kind: the metrics that fit it, printed readably, with
values checked against a direct computation."""
import json

import pytest
import torch

from gankit.api import load_run
from gankit.cli import main

QUICK = ["train.steps=2", "train.threads=1", "train.progress=false", "train.sample_every=0",
         "train.log_every=1", "train.ema=0"]
RUNS = {
    "pix2pix": ["mnist_pix2pix", "G.width=4", "D.width=4", "data.batch_size=8"],
    "cyclegan": ["cyclegan_digits", "G.depth=1", "data.batch_size=4"],
    "cgan": ["mnist_cgan", "G.width=8", "D.width=8", "data.batch_size=16", "train.ema_start=0"],
    "cgan_text": ["mnist_cgan_text", "G.width=8", "D.width=8", "data.batch_size=16",
                  "train.ema_start=0"],
    "mle": ["mle_oracle", "data.toy_samples=300", "G.width=8", "model.emb_dim=8", "data.held_out=0.1"],
    "style": ["style_synth", "G.width=8", "model.emb_dim=8", "model.d_filters=[4,4,4,4]",
              "model.d_emb_dim=8"],
    "vae": ["mnist_vae", "G.width=8", "model.iwae_k=2"],
    "cvae": ["mnist_vae", "G.width=8", "model.iwae_k=2", "data.condition=label"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    return root


def _train(runs, name):
    run = runs / name
    if not run.exists():
        assert main(["train", *RUNS[name], *QUICK, "--out", str(run)]) == 0
    return run


def _eval(run, capsys, *extra):
    capsys.readouterr()
    assert main(["eval", str(run), "--no-cache", "--seed", "0", *map(str, extra)]) == 0
    out = capsys.readouterr().out
    return {line.split()[0]: line for line in out.splitlines() if line.strip()}


def _value(line):
    return float(line.split()[1])


def test_pix2pix_scores_the_held_out_pairs(runs, capsys):
    run = _train(runs, "pix2pix")
    lines = _eval(run, capsys)
    assert set(lines) == {"l1", "psnr", "ssim"}
    assert lines["l1"].endswith("(L1; 500 held-out pairs; lower is better)")
    assert "higher is better" in lines["psnr"] and "higher is better" in lines["ssim"]
    from gankit.data import held_out_tensors

    loaded = load_run(run)
    test = held_out_tensors(loaded.cfg.data, loaded.cfg.train.seed)
    with torch.no_grad():
        pred = torch.cat([loaded.model.translate(a) for a in test["a"].split(250)])
    assert _value(lines["l1"]) == pytest.approx(float((pred - test["b"]).abs().mean()), rel=1e-5)
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["protocol"]["paired"]["n"] == 500


def test_cyclegan_scores_cycle_fid_and_kept_class(runs, capsys):
    lines = _eval(_train(runs, "cyclegan"), capsys)
    assert {"cycle_l1/A", "cycle_l1/B", "fid_digits/AtoB", "fid_digits/BtoA", "keep_class/AtoB"} <= set(lines)
    assert "digit features" in lines["fid_digits/AtoB"] and "lower is better" in lines["fid_digits/AtoB"]
    # the classifier keeps the class of real digits: the ceiling the translations are read against
    assert _value(lines["keep_class/real_A"]) > 0.9


def test_conditional_gan_adds_class_accuracy_and_intra_fid(runs, capsys):
    lines = _eval(_train(runs, "cgan"), capsys, "--n", 200, "--n-real", 500)
    # FID in the digit classifier's features is named so (fid is Inception's)
    assert {"fid_digits", "class_accuracy", "intra_fid", "intra_fid/zero"} <= set(lines)
    assert "fid" not in lines and lines["fid_digits"].split("(")[1].startswith("digit FID; digit features")
    assert "on real data 0.998" in lines["class_accuracy"]  # the digit CNN on MNIST-5k
    assert "200 generated vs 500 real" in lines["fid_digits"] and "real vs real" in lines["fid_digits"]
    # two steps of training: a generator that has not learnt the classes yet
    assert _value(lines["class_accuracy"]) < 0.5


def test_paired_metrics_are_printed_beside_their_real_vs_real_value(runs, capsys):
    lines = _eval(_train(runs, "cgan"), capsys, "--n", 200, "--n-real", 500, "--metrics", "fid,kid,pr",
                  "--kid-subset-size", 100)
    for key in ("fid_digits", "kid", "precision", "recall"):
        assert "real vs real" in lines[key], lines[key]
    real_recall = float(lines["recall"].split("real vs real ")[1].split()[0])
    assert 0.5 < real_recall <= 1.0  # real data recall real data well; a 2-step G does not
    assert _value(lines["recall"]) < real_recall


def test_text_conditioned_gan_is_asked_for_each_class_by_its_words(runs, capsys):
    run = _train(runs, "cgan_text")
    lines = _eval(run, capsys, "--n", 200, "--n-real", 500)
    assert {"class_accuracy", "intra_fid", "within_class_diversity"} <= set(lines)
    # the same number computed directly: 20 samples per digit, asked for by the digit's word
    from gankit.data import load_tensors
    from gankit.metrics.conditional import conditional_scores
    from gankit.metrics.extractors import build_extractor

    loaded = load_run(run)
    tensors, _, info = load_tensors(loaded.cfg.data, loaded.cfg.train.seed)
    direct = conditional_scores(loaded.model, tensors["x"], tensors["y"],
                                build_extractor("digits", info), 20, 0)
    assert _value(lines["class_accuracy"]) == pytest.approx(direct["class_accuracy"], abs=5e-4)


def test_sequence_run_gets_nll_and_bleu(runs, capsys):
    lines = _eval(_train(runs, "mle"), capsys, "--n", 100)
    assert {"nll_gen", "nll_oracle", "bleu2", "self_bleu2"} <= set(lines)
    assert "NLL-oracle; 100 generated vs 30 real; lower is better" in lines["nll_oracle"]
    assert "lower is better" in lines["self_bleu2"] and "higher is better" in lines["bleu2"]


def test_style_run_is_read_beside_its_baselines(runs, capsys):
    lines = _eval(_train(runs, "style"), capsys)
    assert _value(lines["accuracy/rule"]) == 100 and _value(lines["content_f1/copy"]) == 100
    assert "style accuracy" in lines["accuracy"]


def test_vae_reports_held_out_likelihood_in_its_unit(runs, capsys):
    lines = _eval(_train(runs, "vae"), capsys, "--n", 200, "--n-real", 300)
    assert "bits/dim" in lines["nll_iwae_bpd_8bit"] and "500 held-out items" in lines["nll_iwae_bpd_8bit"]
    assert "fid_digits" in lines


def test_kinds_without_samples_refuse_sample_metrics(runs, capsys):
    assert main(["eval", str(_train(runs, "pix2pix")), "--metrics", "fid"]) == 2
    assert "measured by its own metrics" in capsys.readouterr().err


def test_explain_prints_the_glossary(capsys):
    assert main(["eval", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "fid" in out and "lower is better" in out and "classifier_score" in out
    assert "fid_digits" in out and "not comparable with Inception FID" in out


def test_a_conditional_model_of_any_kind_gets_class_accuracy(runs, capsys):
    # the model declares its conditions (its ConditionSpace); no metric asks for its kind
    lines = _eval(_train(runs, "cvae"), capsys, "--n", 200, "--n-real", 300, "--metrics", "fid",
                  "--extractor", "digits")
    assert {"class_accuracy", "intra_fid", "nll_iwae_bpd_8bit"} <= set(lines)


def test_evaluate_run_follows_the_registries(runs, monkeypatch):
    from types import SimpleNamespace

    from gankit.errors import ConfigError
    from gankit.metrics import runs as run_scores
    from gankit.metrics.compute import Scores
    from gankit.metrics.conditional import conditional_scores
    from gankit.metrics.extractors import build_extractor

    loaded = load_run(_train(runs, "cgan"))
    direct = conditional_scores(loaded.model, *_training_digits(loaded),
                                build_extractor("digits", loaded.info), 20, 0)
    measured = run_scores.evaluate_run(loaded, n_per_class=20)
    assert measured["class_accuracy"] == pytest.approx(direct["class_accuracy"], abs=5e-4)
    # a new kind with its own metrics is measured by its registry entry alone
    monkeypatch.setattr(run_scores.RUN_METRICS, "_items", dict(run_scores.RUN_METRICS._items))

    @run_scores.run_metrics("newkind")
    def _newkind(run, args, device):
        scores = Scores()
        scores.add({"answer": float(args.n + args.seed)}, {"metric": "newkind"})
        return scores

    stub = SimpleNamespace(cfg=SimpleNamespace(model=SimpleNamespace(kind="newkind")),
                           model=SimpleNamespace(space=None))
    assert run_scores.evaluate_run(stub, n_per_class=7, seed=2) == {"answer": 9.0}
    stub.cfg = SimpleNamespace(model=SimpleNamespace(kind="gan"), data=SimpleNamespace(condition="none"))
    with pytest.raises(ConfigError, match="no scores beyond the sample metrics"):
        run_scores.evaluate_run(stub)


def _training_digits(loaded):
    from gankit.data import load_tensors

    tensors, _, _ = load_tensors(loaded.cfg.data, loaded.cfg.train.seed)
    return tensors["x"], tensors["y"]
