"""NLL-oracle / NLL-gen, BLEU against nltk, self-BLEU without the sample itself, style scores."""
import math
import random

import pytest
import torch

from gankit.config import DataConfig
from gankit.data.text import load_text_data, make_oracle
from gankit.metrics.text import (
    BleuReference, bleu, content_f1, evaluate_style, nll_gen, nll_oracle, self_bleu, sequence_metrics,
)
from gankit.nets.sequence import LSTMGenerator

HYP = "the cat sat on the mat".split()
REF = "the cat is on the mat".split()


def random_sentences(n, rng, vocab=6, max_len=9):
    return [[f"w{rng.randrange(vocab)}" for _ in range(rng.randrange(0, max_len))] for _ in range(n)]


def test_bleu_by_hand():
    # unigrams 5/6, bigrams 3/5, trigrams 1/4, 4-grams 0/3 -> 0.1/3 (method1); equal lengths
    ref = BleuReference([REF], max_n=4)
    assert ref.score(HYP, 2) == pytest.approx(math.sqrt(5 / 6 * 3 / 5))
    assert ref.score(HYP, 4) == pytest.approx((5 / 6 * 3 / 5 * 1 / 4 * 0.1 / 3) ** 0.25)
    short = "the cat".split()  # brevity penalty exp(1 - 6/2); bigram 1/1
    assert ref.score(short, 2) == pytest.approx(math.exp(1 - 3) * 1.0)
    assert ref.score([], 2) == 0.0 and ref.score(["dog"], 2) == 0.0


def test_bleu_equals_nltk_sentence_bleu_with_method1():
    nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
    smooth = nltk_bleu.SmoothingFunction().method1
    rng = random.Random(0)
    refs = [r for r in random_sentences(25, rng) if r]
    hyps = random_sentences(40, rng) + [refs[0], refs[1][:1], ["unseen", "words"]]
    for n in (2, 3, 4, 5):
        ours = BleuReference(refs, max_n=5)
        weights = tuple(1.0 / n for _ in range(n))
        for h in hyps:
            theirs = nltk_bleu.sentence_bleu(refs, h, weights, smoothing_function=smooth)
            assert ours.score(h, n) == theirs, (n, h)


def test_self_bleu_scores_each_sample_against_the_others_only():
    assert self_bleu([["a", "b", "c"], ["d", "e", "f"]], n=2) == 0.0  # against itself it would be 1
    assert self_bleu([["a", "b", "c"], ["a", "b", "c"]], n=2) == pytest.approx(1.0)
    nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
    smooth = nltk_bleu.SmoothingFunction().method1
    rng = random.Random(1)
    samples = [s for s in random_sentences(30, rng, vocab=4) if s] + [["w0", "w1", "w2"]] * 2
    for n in (2, 4):
        weights = tuple(1.0 / n for _ in range(n))
        expected = sum(nltk_bleu.sentence_bleu(samples[:i] + samples[i + 1:], s, weights,
                                               smoothing_function=smooth)
                       for i, s in enumerate(samples)) / len(samples)
        assert self_bleu(samples, n) == pytest.approx(expected, rel=1e-12, abs=0)


def test_sequence_metrics_report_bleu_and_self_bleu_orders():
    rng = random.Random(2)
    samples, test = random_sentences(20, rng), [s for s in random_sentences(20, rng) if s]
    out = sequence_metrics(samples, test, orders=(2, 3))
    assert set(out) == {"bleu2", "bleu3", "self_bleu2", "self_bleu3"}
    assert out["bleu2"] == pytest.approx(bleu(samples, test, 2))


def entropy_rate(oracle, n=20_000):
    """The oracle's mean per-token entropy E[sum_t H(p(.|x_<t))] / L, Rao-Blackwellised."""
    x = oracle.sample(n, u=torch.rand(n, oracle.max_len))
    logp = torch.log_softmax(oracle(x), -1)
    return float(-(logp.exp() * logp).sum(-1).mean())


def test_with_g_equal_to_the_oracle_both_nlls_equal_the_entropy_rate():
    torch.manual_seed(0)
    oracle = make_oracle(30, 8, seed=0)
    G = LSTMGenerator(30, 8, 32, 32)
    G.load_state_dict(oracle.state_dict())
    h = entropy_rate(oracle)
    samples = G.sample(4000, u=torch.rand(4000, 8))
    test = oracle.sample(4000, u=torch.rand(4000, 8))
    per_seq = -oracle.log_probs(samples).mean(1)
    se = float(per_seq.std()) / math.sqrt(len(per_seq))  # about 0.01 nats here
    assert abs(nll_oracle(oracle, samples) - h) < 4 * se
    assert abs(nll_gen(G, test) - h) < 4 * se
    # a colder G lowers NLL-oracle below the entropy rate: why NLL-gen is always shown too
    cold = G.sample(4000, u=torch.rand(4000, 8), temperature=0.5)
    assert nll_oracle(oracle, cold) < h - 0.2
    assert nll_gen(G, test, temperature=0.5) > h + 0.2


def test_nll_gen_counts_tokens_up_to_the_end_token():
    G = LSTMGenerator(5, 3, 4, 4, eos=1, pad=0)
    x = torch.tensor([[3, 1, 0], [4, 3, 1]])
    logp = G.log_probs(x).detach()
    expected = -(logp[0, :2].sum() + logp[1].sum()) / 5
    assert nll_gen(G, x, eos=1) == pytest.approx(float(expected))


def test_content_f1_ignores_style_words():
    style = {"good", "bad"}
    assert content_f1("the food was bad".split(), "the food was good".split(), style) == 1.0
    # output content {the, soup, was}, source {the, food, was}: P = R = 2/3
    assert content_f1("the soup was bad".split(), "the food was good".split(), style) == pytest.approx(2 / 3)
    assert content_f1(["bad"], ["good"], style) == 1.0


def test_style_copy_baseline_scores_zero_accuracy_and_the_gold_one_hundred():
    data = load_text_data(DataConfig(source="style_synth", max_len=18))
    test = {k: torch.cat([v[:100], v[-100:]]) for k, v in data.test.items()}  # both directions
    scores = evaluate_style(lambda x, to: x, test, data.style, data.vocab)
    copy, rule, model = scores["copy"], scores["rule"], scores["model"]
    assert copy["accuracy"] == 0.0 and copy["exact_match"] == 0.0 and copy["bleu_source"] == 100.0
    assert model == copy  # the "model" here copies too
    gold = evaluate_style(lambda x, to: test["gold"], test, data.style, data.vocab)["model"]
    assert gold == rule
    assert gold["accuracy"] == 100.0 and gold["exact_match"] == 100.0
    assert gold["bleu_gold"] == pytest.approx(100.0) and gold["content_f1"] == 100.0
