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
