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
