"""``style_synth``: a templated review grammar for unpaired style transfer with exact answers.

Style is a word-level bijection (positive <-> negative: good/bad, love/hate, ...). Each
sentiment pair has its own clause frame, so the pairing can be recovered from unpaired data.
A sentence's *content* is its clause frames and content words; contents are split three ways
so the positive training sentences, the negative ones and the test sentences share none:
training is truly unpaired, and the correct transfer of every test sentence is known by rule.

This module is the grammar alone (sentences as word lists); :mod:`gankit.data.text` turns
them into token tensors (``load_text_data``), so the dependency runs one way.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

STYLE_NAMES = ("positive", "negative")
N_TRAIN = 3000  # sentences per style
N_TEST = 500  # test sentences per direction
SEED = 2017

SLOTS = {
    "food": "pizza pasta soup salad steak fish burger noodles curry tacos sushi bread".split(),
    "venue": "restaurant cafe bar bistro diner bakery pub".split(),
    "staff": "waiters staff hosts cooks cashiers bartenders".split(),
    "meal": "dinner lunch breakfast brunch".split(),
    "person": "friends family parents kids colleagues partner".split(),
    "room": "table kitchen bathroom floor patio".split(),
    "drink": "coffee tea juice wine beer lemonade".split(),
}
# (frame, (positive word, negative word)); '*' marks the style word
CLAUSES = [
    ("the {food} at this {venue} was *", ("good", "bad")),
    ("i * the {food} they serve", ("love", "hate")),
    ("the {staff} were *", ("friendly", "rude")),
    ("it was a * {meal} with my {person}", ("great", "terrible")),
    ("we will * come back to this {venue}", ("definitely", "never")),
    ("the {room} was *", ("clean", "dirty")),
    ("the {drink} tasted *", ("fresh", "stale")),
    ("the prices of the {drink} were *", ("fair", "outrageous")),
]
BUILTIN_STYLE = {"style_synth"}

Content = tuple  # ((clause index, (slot words...)), ...)


@dataclass(frozen=True)
class StyleRule:
    """The grammar's exact answers: which style a sentence is in and its correct transfer."""

    words: tuple[tuple[str, ...], tuple[str, ...]] = (
        tuple(p for _, (p, _) in CLAUSES), tuple(n for _, (_, n) in CLAUSES))
    names: tuple[str, str] = STYLE_NAMES

    def classify(self, sentence: list[str]) -> int:
        """0 or 1 when only that style's words occur, -1 when none or both do."""
        has = [any(w in set(ws) for w in sentence) for ws in self.words]
        if has[0] == has[1]:
            return -1
        return 0 if has[0] else 1

    def transfer(self, sentence: list[str], to_style: int) -> list[str]:
        """Swap every style word of the other style for its counterpart."""
        mapping = dict(zip(self.words[1 - to_style], self.words[to_style]))
        return [mapping.get(w, w) for w in sentence]

    def style_words(self) -> set[str]:
        return set(self.words[0]) | set(self.words[1])


def _clause_words(index: int, fillers: tuple[str, ...], style: int) -> list[str]:
    frame, pair = CLAUSES[index]
    fill = iter(fillers)
    out = []
    for token in frame.split():
        if token == "*":
            out.append(pair[style])
        elif token.startswith("{"):
            out.append(next(fill))
        else:
            out.append(token)
    return out


def render(content: Content, style: int) -> list[str]:
    """The sentence of ``content`` in ``style`` (0 positive, 1 negative)."""
    words: list[str] = []
    for k, (index, fillers) in enumerate(content):
        if k:
            words.append("and")
        words += _clause_words(index, fillers, style)
    return words


def _random_clause(rng: random.Random, index: int) -> tuple[int, tuple[str, ...]]:
    frame = CLAUSES[index][0]
    slots = [t[1:-1] for t in frame.split() if t.startswith("{")]
    return index, tuple(rng.choice(SLOTS[s]) for s in slots)


def contents(n: int, seed: int = SEED) -> list[Content]:
    """``n`` distinct contents of one or two clauses (two different frames)."""
    rng = random.Random(seed)
    seen: dict[Content, None] = {}
    while len(seen) < n:
        k = 1 if rng.random() < 0.4 else 2
        frames = rng.sample(range(len(CLAUSES)), k)
        seen.setdefault(tuple(_random_clause(rng, i) for i in frames), None)
    return list(seen)


def max_words() -> int:
    longest = sorted((len(f.split()) for f, _ in CLAUSES), reverse=True)
    return longest[0] + 1 + longest[1]


def splits() -> dict[str, list[list[str]]]:
    """Disjoint contents: positive training, negative training, test sources and golds."""
    pool = contents(2 * N_TRAIN + 2 * N_TEST)
    pos, neg = pool[:N_TRAIN], pool[N_TRAIN:2 * N_TRAIN]
    test_pos, test_neg = pool[2 * N_TRAIN:2 * N_TRAIN + N_TEST], pool[2 * N_TRAIN + N_TEST:]
    return {
        "train": [render(c, 0) for c in pos] + [render(c, 1) for c in neg],
        "train_style": [0] * len(pos) + [1] * len(neg),
        "test": [render(c, 0) for c in test_pos] + [render(c, 1) for c in test_neg],
        "test_style": [0] * len(test_pos) + [1] * len(test_neg),
        "gold": [render(c, 1) for c in test_pos] + [render(c, 0) for c in test_neg],
    }
