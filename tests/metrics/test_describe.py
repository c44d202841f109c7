"""Every score gankit prints says which way is better, and gankit eval --explain lists it."""
from gankit.metrics.compute import HIGHER
from gankit.metrics.describe import LOWER, describe, entry, explain
from gankit.metrics.describe import HIGHER as HIGHER_WORDS

TOY_KEYS = {"modes": HIGHER_WORDS, "modes_fair": HIGHER_WORDS, "high_quality": HIGHER_WORDS,
            "mode_kl": LOWER, "within_1std": HIGHER_WORDS, "beyond_10std": LOWER}


def test_every_key_a_metric_declares_higher_is_described_as_higher_is_better():
    undescribed = [k for k in HIGHER if entry(k) is None or entry(k).better != HIGHER_WORDS]
    assert not undescribed


def test_the_toy_scores_print_with_their_direction():
    protocol = {"metric": "toy", "n_fake": 10000}
    for key, better in TOY_KEYS.items():
        line = describe(key, 0.5, protocol)
        assert line.endswith(f"; {better})"), line


def test_explain_lists_the_toy_scores():
    text = explain()
    for key in TOY_KEYS:
        assert any(line.startswith(f"{key} ") for line in text.splitlines()), key


def test_mean_std_is_shown_to_the_precision_of_its_spread():
    from gankit.metrics.describe import format_mean_std

    assert format_mean_std(0.006667, 0.0025) == "0.0067 ± 0.0025"
    assert format_mean_std(26.71, 0.1) == "26.71 ± 0.10"
    assert format_mean_std(0.937, 0.0123) == "0.937 ± 0.012"
    assert format_mean_std(12345.0, 678.0) == "12340 ± 680"
    assert format_mean_std(12.3456, 2.5) == "12.3 ± 2.5"
    # a lone value or an undefined spread: 4 significant digits; runs that agree: ± 0
    assert format_mean_std(0.006667) == "0.006667"
    assert format_mean_std(3.14159, 0.0) == "3.142 ± 0"
    assert format_mean_std(3.14159, float("nan")) == "3.142"
    assert format_mean_std(float("inf"), float("nan")) == "inf"


def test_an_older_runs_digit_fid_is_read_as_fid_digits(tmp_path):
    import json

    from gankit.metrics.describe import upgrade_record
    from gankit.viz.runs import read_run

    digit = {"step": 10, "metrics/fid": 4.06, "metrics/modes": 10,
             "protocol": {"fid": {"metric": "fid", "extractor": "digit-cnn", "n_fake": 500},
                          "modes": {"metric": "modes", "extractor": "digit-cnn"}}}
    inception = {"step": 20, "metrics/fid": 26.7,
                 "protocol": {"fid": {"metric": "fid", "extractor": "inception-v3-tf"}}}
    bare = {"step": 30, "metrics/fid": 1.5}  # no protocol: its features are unknown
    up = upgrade_record(digit)
    assert up["metrics/fid_digits"] == 4.06 and "metrics/fid" not in up and up["metrics/modes"] == 10
    assert up["protocol"]["fid_digits"]["extractor"] == "digit-cnn" and "fid" not in up["protocol"]
    assert up["protocol"]["modes"] == digit["protocol"]["modes"]
    assert upgrade_record(inception) == inception and upgrade_record(bare) == bare
    # gankit runs and the report read a run through read_run: both FIDs show, each by its name
    (tmp_path / "config.yaml").write_text("model: {kind: gan}\n")
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (digit, inception)))
    assert read_run(tmp_path).final_metrics() == {"fid_digits": 4.06, "modes": 10.0, "fid": 26.7}
