"""Text metrics: NLL-oracle, NLL-gen, BLEU, self-BLEU and the style-transfer scores.

BLEU here is nltk's ``sentence_bleu(references, hypothesis, weights=(1/n,)*n,
smoothing_function=SmoothingFunction().method1)`` to the last bit, made fast: the clipping
counts (for every n-gram, its largest count in any one reference) and the reference lengths
are computed once for the whole reference set instead of once per hypothesis. Self-BLEU
scores each sample against all the *other* samples; a sample is never its own reference.

NLL-oracle alone rewards mode collapse (sampling at a lower temperature lowers it below the
oracle's own entropy rate), so :func:`sequence_metrics` always reports it with NLL-gen.
"""
from __future__ import annotations

import bisect
import math
from collections import Counter
from typing import Hashable, Iterable, Sequence

import torch
from torch import Tensor

from gankit.errors import DataError

Sentence = Sequence[Hashable]
EPSILON = 0.1  # nltk's SmoothingFunction().epsilon, used by method1


# ---- likelihoods -----------------------------------------------------------------------------
@torch.no_grad()
def nll_oracle(oracle, samples: Tensor, batch_size: int = 1000) -> float:
    """The oracle's mean per-token NLL (nats) of generated ``samples`` [N, L]."""
    return _mean_nll(oracle, samples, batch_size)


@torch.no_grad()
def nll_gen(generator, data: Tensor, temperature: float = 1.0, eos: int | None = None,
            c: Tensor | None = None, batch_size: int = 1000) -> float:
    """The generator's mean per-token NLL (nats) of held-out real ``data`` [N, L] (tokens up to
    and including the end token when ``eos`` is given), at sampling ``temperature``."""
    return _mean_nll(generator, data, batch_size, temperature, eos, c)


def _mean_nll(model, x: Tensor, batch_size: int, temperature: float = 1.0,
              eos: int | None = None, c: Tensor | None = None) -> float:
    from gankit.nets.sequence import valid_mask

    if x.numel() == 0:
        raise DataError("no sequences to score")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for s in range(0, len(x), batch_size):
            xb = x[s:s + batch_size].to(device)
            cb = c[s:s + batch_size].to(device) if c is not None else None
            logp = model.log_probs(xb, c=cb, temperature=temperature)
            mask = valid_mask(xb, eos)
            total -= float(logp[mask].double().sum())
            count += int(mask.sum())
    finally:
        model.train(was_training)
    return total / count


# ---- BLEU ------------------------------------------------------------------------------------
def ngrams(sentence: Sentence, n: int) -> Counter:
    return Counter(tuple(sentence[i:i + n]) for i in range(len(sentence) - n + 1))


def _closest(lengths: list[int], hyp_len: int) -> int:
    """The reference length closest to ``hyp_len`` (the shorter one on ties), as nltk picks it."""
    i = bisect.bisect_left(lengths, hyp_len)
    candidates = lengths[max(0, i - 1):i + 1]
    return min(candidates, key=lambda r: (abs(r - hyp_len), r))


def _bleu(matches: list[int], totals: list[int], hyp_len: int, ref_len: int) -> float:
    """nltk's arithmetic: method1 smoothing of zero matches, fsum of weighted logs, brevity."""
    if matches[0] == 0:
        return 0.0
    n = len(matches)
    precisions = [(m + EPSILON) / d if m == 0 else m / d for m, d in zip(matches, totals)]
    s = math.fsum(1.0 / n * math.log(p) for p in precisions)
    if hyp_len > ref_len:
        bp = 1.0
    else:
        bp = math.exp(1 - ref_len / hyp_len)
    return bp * math.exp(s)


def _hyp_counts(hyp: Sentence, max_n: int) -> list[Counter]:
    return [ngrams(hyp, k) for k in range(1, max_n + 1)]


class BleuReference:
    """A fixed reference set (e.g. the test sentences) that scores many hypotheses fast."""

    def __init__(self, references: Iterable[Sentence], max_n: int = 5):
        refs = [list(r) for r in references]
        if not refs:
            raise DataError("BLEU needs at least one reference sentence")
        self.max_n = max_n
        self.max_counts: list[dict[tuple, int]] = [{} for _ in range(max_n)]
        for r in refs:
            for k in range(max_n):
                table = self.max_counts[k]
                for g, c in ngrams(r, k + 1).items():
                    if c > table.get(g, 0):
                        table[g] = c
        self.lengths = sorted(set(len(r) for r in refs))

    def score(self, hyp: Sentence, n: int = 4) -> float:
        """nltk's sentence BLEU-n of ``hyp`` against every reference."""
        _check_order(n, self.max_n)
        counts = _hyp_counts(hyp, n)
        matches = [sum(min(c, self.max_counts[k].get(g, 0)) for g, c in counts[k].items())
                   for k in range(n)]
        totals = [max(1, sum(counts[k].values())) for k in range(n)]
        return _bleu(matches, totals, len(hyp), _closest(self.lengths, len(hyp)))


def _check_order(n: int, max_n: int) -> None:
    if not 1 <= n <= max_n:
        raise ValueError(f"BLEU order {n} must be between 1 and {max_n}")


def bleu(hypotheses: Iterable[Sentence], references: Iterable[Sentence], n: int = 4) -> float:
    """Mean sentence BLEU-n of ``hypotheses``, each against all ``references``."""
    ref = BleuReference(references, max_n=n)
    scores = [ref.score(h, n) for h in hypotheses]
    if not scores:
        raise DataError("BLEU needs at least one hypothesis")
    return sum(scores) / len(scores)


class _TopTwo:
    """For one n-gram: the largest count in any sentence, how many sentences reach it, and
    the second-largest count, so the largest count *excluding* one sentence is O(1)."""

    __slots__ = ("first", "holders", "second")

    def __init__(self) -> None:
        self.first, self.holders, self.second = 0, 0, 0

    def add(self, c: int) -> None:
        if c > self.first:
            self.first, self.holders, self.second = c, 1, self.first
        elif c == self.first:
            self.holders += 1
        elif c > self.second:
            self.second = c

    def without(self, c: int) -> int:
        if c == self.first and self.holders == 1:
            return self.second
        return self.first


def self_bleu(samples: Sequence[Sentence], n: int = 4) -> float:
    """Mean BLEU-n of each sample against all the other samples (never against itself)."""
    sents = [list(s) for s in samples]
    if len(sents) < 2:
        raise DataError("self-BLEU needs at least two samples")
    counts = [_hyp_counts(s, n) for s in sents]
    tables: list[dict[tuple, _TopTwo]] = [{} for _ in range(n)]
    for sc in counts:
        for k in range(n):
            for g, c in sc[k].items():
                tables[k].setdefault(g, _TopTwo()).add(c)
    length_counts = Counter(len(s) for s in sents)
    total = 0.0
    for s, sc in zip(sents, counts):
        matches = [sum(min(c, tables[k][g].without(c)) for g, c in sc[k].items()) for k in range(n)]
        totals = [max(1, sum(sc[k].values())) for k in range(n)]
        length_counts[len(s)] -= 1
        others = sorted(length for length, m in length_counts.items() if m > 0)
        length_counts[len(s)] += 1
        total += _bleu(matches, totals, len(s), _closest(others, len(s)))
    return total / len(sents)


# ---- one report ------------------------------------------------------------------------------
def sequence_metrics(samples: list[list[str]], test: list[list[str]], orders: Sequence[int] = (2, 3, 4, 5),
                     self_bleu_n: int = 200) -> dict[str, float]:
    """BLEU-n of ``samples`` against ``test`` and self-BLEU-n of the first ``self_bleu_n`` samples."""
    ref = BleuReference(test, max_n=max(orders))
    out = {f"bleu{n}": sum(ref.score(s, n) for s in samples) / len(samples) for n in orders}
    subset = samples[:self_bleu_n]
    out.update({f"self_bleu{n}": self_bleu(subset, n) for n in orders})
    return out


# ---- style transfer -----------------------------------------------------------------------
def content_f1(output: Sentence, source: Sentence, style_words: set) -> float:
    """F1 of the multisets of non-style words of ``output`` and ``source`` (1 when both empty)."""
    a = Counter(w for w in output if w not in style_words)
    b = Counter(w for w in source if w not in style_words)
    if not a and not b:
        return 1.0
    common = sum((a & b).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def style_transfer_scores(outputs: Sequence[Sentence], sources: Sequence[Sentence],
                          golds: Sequence[Sentence], targets: Sequence[int], rule) -> dict[str, float]:
    """Transfer accuracy (the rule classifies the output as the target style), exact match,
    BLEU-4 to the gold transfer, BLEU-4 to the source and content F1, all in percent."""
    if not (len(outputs) == len(sources) == len(golds) == len(targets)) or not outputs:
        raise DataError("style scores need one output, source, gold and target style per test sentence")
    words = rule.style_words()
    n = len(outputs)
    acc = sum(rule.classify(list(o)) == t for o, t in zip(outputs, targets))
    exact = sum(list(o) == list(g) for o, g in zip(outputs, golds))
    to_gold = sum(BleuReference([g], 4).score(o, 4) for o, g in zip(outputs, golds))
    to_source = sum(BleuReference([s], 4).score(o, 4) for o, s in zip(outputs, sources))
    f1 = sum(content_f1(o, s, words) for o, s in zip(outputs, sources))
    return {"accuracy": 100 * acc / n, "exact_match": 100 * exact / n, "bleu_gold": 100 * to_gold / n,
            "bleu_source": 100 * to_source / n, "content_f1": 100 * f1 / n}


def evaluate_style(translate, test: dict[str, Tensor], rule, vocab) -> dict[str, dict[str, float]]:
    """Scores of ``translate(x, to_style) -> ids`` on a built-in style test set, beside the
    baselines "copy the input" and "the rule" (the exact answer). ``vocab`` is the task's
    :class:`gankit.data.text.Vocab`."""
    from gankit.data.text import decode_batch

    sources = [s.split() for s in decode_batch(test["x"], vocab)]
    golds = [s.split() for s in decode_batch(test["gold"], vocab)]
    targets = (1 - test["y"]).tolist()
    outputs = [s.split() for s in decode_batch(translate(test["x"], 1 - test["y"]), vocab)]
    ruled = [rule.transfer(s, t) for s, t in zip(sources, targets)]
    return {name: style_transfer_scores(o, sources, golds, targets, rule)
            for name, o in (("model", outputs), ("copy", sources), ("rule", ruled))}


# ---- a trained run ---------------------------------------------------------------------------
@torch.no_grad()
def evaluate_text_run(run, n: int = 2000, temperature: float = 1.0, seed: int = 0,
                      bleu_n: int = 500, orders: Sequence[int] = (2, 3, 4, 5),
                      use_ema: bool = True, data=None) -> dict[str, float]:
    """NLL-gen on the test split, NLL-oracle (oracle data), BLEU-n against the test split and
    self-BLEU-n of a sequence run (a :class:`gankit.api.LoadedRun` of mle/seqgan/gumbel/dense),
    from ``n`` samples at ``temperature`` (BLEU from the first ``bleu_n``)."""
    from gankit.data.text import decode_batch, load_text_data

    if getattr(run.model, "c_dim", 0):
        raise DataError("evaluate a conditional text run class by class; this function scores "
                        "unconditional generators")
    data = data if data is not None else load_text_data(run.cfg.data)
    G = run.model.net("G", use_ema).eval()
    if len(data.test["x"]) == 0:
        raise DataError("this run's data has no test split; train with data.held_out > 0")
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, G.max_len, generator=g).to(run.model.device)
    samples = torch.cat([G.sample(len(part), u=part, temperature=temperature)
                         for part in u.split(500)]).cpu()
    out = {"nll_gen": nll_gen(G, data.test["x"], temperature, eos=data.vocab.eos)}
    if data.oracle is not None:
        out["nll_oracle"] = nll_oracle(data.oracle, samples)
    words = [s.split() for s in decode_batch(samples[:bleu_n], data.vocab)]
    test = [s.split() for s in decode_batch(data.test["x"], data.vocab)]
    out.update(sequence_metrics(words, test, orders, self_bleu_n=min(bleu_n, 200)))
    return out
