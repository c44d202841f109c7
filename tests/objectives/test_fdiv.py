"""The f-divergence table against the theory it encodes.

For discrete P and Q a batch that holds point x_k exactly N * p_k times has P as its empirical
distribution, so the objectives' means become exact expectations and the theory can be
checked with assert_close rather than with sampling noise.
"""
import math

import pytest
import torch
from torch.testing import assert_close

from gankit.errors import ConfigError
from gankit.objectives import (FDIVERGENCES, OBJECTIVES, f_divergence, get_objective,
                               variational_bound)

DT = torch.float64
P_COUNTS = [4, 2, 1, 1]  # out of 8
Q_COUNTS = [1, 1, 2, 4]
P = torch.tensor(P_COUNTS, dtype=DT) / 8
Q = torch.tensor(Q_COUNTS, dtype=DT) / 8
RATIO = P / Q

# The critic V* with g_f(V*) = f'(p/q), from f' and g_f inverted by hand:
#   kl         f'(u) = 1 + log u,             g = v            -> V = 1 + log u
#   reverse-kl f'(u) = -1/u,                  g = -exp(-v)     -> V = log u
#   pearson    f'(u) = 2(u - 1),              g = v            -> V = 2(u - 1)
#   hellinger  f'(u) = 1 - u^(-1/2),          g = 1 - exp(-v)  -> V = log(u) / 2
#   js         f'(u) = log(2u / (1 + u)),     g = log 2 - log(1 + e^-v) -> V = log u
OPTIMAL_CRITIC = {
    "kl": lambda u: 1 + torch.log(u),
    "reverse-kl": torch.log,
    "pearson": lambda u: 2 * (u - 1),
    "hellinger": lambda u: 0.5 * torch.log(u),
    "js": torch.log,
}


def batch(values: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """A batch whose empirical distribution over the points puts counts[k] / N on point k."""
    return values.repeat_interleave(torch.tensor(counts))


def test_table_rows_are_the_registered_fgan_objectives():
    assert set(FDIVERGENCES) == set(OPTIMAL_CRITIC)
    assert set(FDIVERGENCES) <= set(OBJECTIVES)


def test_divergence_values_match_hand_sums():
    p, q = P.tolist(), Q.tolist()
    kl = sum(a * math.log(a / b) for a, b in zip(p, q))
    reverse_kl = sum(b * math.log(b / a) for a, b in zip(p, q))
    pearson = sum((a - b) ** 2 / b for a, b in zip(p, q))
    hellinger = sum((math.sqrt(a) - math.sqrt(b)) ** 2 for a, b in zip(p, q))
    m = [(a + b) / 2 for a, b in zip(p, q)]
    js = 0.5 * sum(a * math.log(a / c) for a, c in zip(p, m)) + 0.5 * sum(
        b * math.log(b / c) for b, c in zip(q, m))
    # the table's JS generator is the paper's, whose conjugate fixes D_f = 2 JS
    expected = {"kl": kl, "reverse-kl": reverse_kl, "pearson": pearson,
                "hellinger": hellinger, "js": 2 * js}
    for name, value in expected.items():
        assert_close(f_divergence(name, P, Q), torch.tensor(value, dtype=DT), msg=name)


@pytest.mark.parametrize("name", sorted(OPTIMAL_CRITIC))
def test_bound_at_optimal_critic_equals_the_divergence(name):
    v_star = OPTIMAL_CRITIC[name](RATIO)
    row = FDIVERGENCES.get(name)
    assert_close(row.activation(v_star), row_derivative(name, RATIO))
    d_loss = get_objective(name).d_loss(batch(v_star, P_COUNTS), batch(v_star, Q_COUNTS))
    assert_close(-d_loss, f_divergence(name, P, Q))


def row_derivative(name: str, u: torch.Tensor) -> torch.Tensor:
    """f'(u) by autograd on the table's generator f: the optimal critic's target."""
    u = u.clone().requires_grad_(True)
    FDIVERGENCES.get(name).generator(u).sum().backward()
    return u.grad


@pytest.mark.parametrize("name", sorted(OPTIMAL_CRITIC))
def test_any_other_critic_gives_a_smaller_bound(name):
    v_star = OPTIMAL_CRITIC[name](RATIO)
    divergence = f_divergence(name, P, Q)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        v = v_star + 0.3 * torch.randn(v_star.shape, generator=gen, dtype=DT)
        bound = variational_bound(name, batch(v, P_COUNTS), batch(v, Q_COUNTS))
        assert bound < divergence


@pytest.mark.parametrize("name", sorted(OPTIMAL_CRITIC))
def test_conjugate_is_the_fenchel_conjugate_of_the_generator(name):
    # f*(t) = sup_u (u t - f(u)), attained at u with f'(u) = t: check at a few u.
    row = FDIVERGENCES.get(name)
    u = torch.tensor([0.2, 0.7, 1.0, 1.5, 4.0], dtype=DT)
    t = row_derivative(name, u)
    assert_close(row.conjugate(t), u * t - row.generator(u))


@pytest.mark.parametrize("name", sorted(OPTIMAL_CRITIC))
def test_stable_composition_equals_naive_one_on_moderate_inputs(name):
    row = FDIVERGENCES.get(name)
    v = torch.linspace(-4, 4, 33, dtype=DT)
    assert_close(row.conjugate_of_activation(v), row.conjugate(row.activation(v)))


def test_stable_composition_survives_where_the_naive_one_overflows():
    cases = {"js": 40.0, "hellinger": 20.0, "reverse-kl": -100.0}
    expected = {"js": 40.0 - math.log(2), "hellinger": math.expm1(20.0), "reverse-kl": -101.0}
    for name, v in cases.items():
        row = FDIVERGENCES.get(name)
        v = torch.tensor([v])  # float32, as in training
        assert not torch.isfinite(row.conjugate(row.activation(v))).all(), name
        assert_close(row.conjugate_of_activation(v), torch.tensor([expected[name]]), msg=name)


# ---- the original GAN: JS in disguise ---------------------------------------------------------
def js_by_hand(p: list[float], q: list[float]) -> float:
    total = 0.0
    for a, b in zip(p, q):
        m = (a + b) / 2
        total += 0.5 * a * math.log(a / m) if a else 0.0
        total += 0.5 * b * math.log(b / m) if b else 0.0
    return total


def test_optimal_discriminator_value_is_twice_js_minus_2_log_2():
    # D*(x) = p / (p + q), i.e. logit log(p / q)
    logits = torch.log(RATIO)
    d_loss = get_objective("minimax").d_loss(batch(logits, P_COUNTS), batch(logits, Q_COUNTS))
    expected = 2 * js_by_hand(P.tolist(), Q.tolist()) - 2 * math.log(2)
    assert_close(-d_loss, torch.tensor(expected, dtype=DT))


def test_disjoint_supports_give_js_log_2_at_every_distance():
    # P on points 0, 1 and Q on points 2, 3: D* = 1 on P's points and 0 on Q's.
    p_counts, q_counts = [1, 1, 0, 0], [0, 0, 1, 1]
    logits = torch.tensor([math.inf, math.inf, -math.inf, -math.inf], dtype=DT)
    d_loss = get_objective("minimax").d_loss(batch(logits, p_counts), batch(logits, q_counts))
    js = math.log(2)
    assert_close(-d_loss, torch.tensor(2 * js - 2 * math.log(2), dtype=DT))

    # a point mass at bin 0 against one at bin k: JS is flat in k, Wasserstein-1 grows as k
    bins = 12
    p = torch.zeros(bins, dtype=DT)
    p[0] = 1.0
    for k in range(1, bins):
        q = torch.zeros(bins, dtype=DT)
        q[k] = 1.0
        assert_close(f_divergence("js", p, q) / 2, torch.tensor(math.log(2), dtype=DT))
        w1 = (torch.cumsum(p, 0) - torch.cumsum(q, 0)).abs().sum()
        assert_close(w1, torch.tensor(float(k), dtype=DT))


def test_divergence_limits_where_one_distribution_has_no_mass():
    p = torch.tensor([0.5, 0.5, 0.0], dtype=DT)
    q = torch.tensor([0.5, 0.0, 0.5], dtype=DT)
    assert f_divergence("kl", p, q) == math.inf  # P has mass where Q has none
    assert f_divergence("reverse-kl", p, q) == math.inf  # and Q where P has none
    # squared Hellinger: sum (sqrt p - sqrt q)^2 = 0 + 0.5 + 0.5
    assert_close(f_divergence("hellinger", p, q), torch.tensor(1.0, dtype=DT))


def test_bad_distributions_and_names_are_rejected():
    with pytest.raises(ValueError, match="sums to"):
        f_divergence("kl", torch.tensor([0.5, 0.6]), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="negative"):
        f_divergence("kl", torch.tensor([1.5, -0.5]), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="same shape"):
        f_divergence("kl", torch.tensor([1.0]), torch.tensor([0.5, 0.5]))
    with pytest.raises(ConfigError, match="did you mean 'hellinger'"):
        f_divergence("helinger", P, Q)
