"""The LSTM generator (teacher forcing, sampling, Gumbel-softmax) and the text discriminators."""
import pytest
import torch
import torch.nn.functional as F

from gankit.errors import ConfigError
from gankit.nets.sequence import (
    CNNDiscriminator, LSTMGenerator, RecurrentDiscriminator, Transducer, gumbel_noise, valid_mask,
)

V, L = 11, 6


def generator(**kw):
    torch.manual_seed(0)
    return LSTMGenerator(V, L, emb_dim=8, hidden=8, **kw)


def test_teacher_forcing_predicts_each_token_from_the_ones_before_it():
    G = generator()
    x = torch.randint(0, V, (3, L))
    logits = G(x)
    # position t sees start, x_0..x_{t-1}: rerun step by step and compare
    state, prev = None, torch.full((3,), V)
    for t in range(L):
        step_logits, state = G.step(prev, state)
        torch.testing.assert_close(logits[:, t], step_logits)
        prev = x[:, t]
    changed = x.clone()
    changed[:, 3] = (x[:, 3] + 1) % V
    other = G(changed)
    torch.testing.assert_close(other[:, :4], logits[:, :4])  # x_3 is the target at 3, not an input
    assert not torch.allclose(other[:, 4], logits[:, 4])
    logp = G.log_probs(x)
    torch.testing.assert_close(logp, F.log_softmax(logits, -1).gather(2, x.unsqueeze(2)).squeeze(2))


def test_inverse_cdf_sampling_picks_the_token_where_u_falls():
    G = generator()
    with torch.no_grad():  # a fixed distribution at every step: p = softmax(bias)
        G.out.weight.zero_()
        G.out.bias.copy_(torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4] + [1e-12] * (V - 4))))
    cdf = torch.tensor([0.1, 0.3, 0.6, 1.0])
    u = torch.tensor([[0.05, 0.15, 0.35, 0.65, 0.999, 0.29]])
    x = G.sample(1, u=u)
    assert x.tolist() == [[0, 1, 2, 3, 3, 1]]
    assert torch.equal(x, torch.searchsorted(cdf, u, right=True))


def test_sampling_keeps_a_prefix_and_pads_after_the_end_token():
    G = generator(eos=1, pad=0)
    prefix = torch.tensor([[5, 6], [7, 1]])  # the second one has already ended
    x = G.sample(2, u=torch.rand(2, L), prefix=prefix)
    assert torch.equal(x[:, :2], prefix)
    assert x[1, 2:].tolist() == [0] * (L - 2)
    many = G.sample(500, u=torch.rand(500, L))
    ended = valid_mask(many, 1)
    assert (many[~ended] == 0).all()  # everything after the first <eos> is <pad>


def test_valid_mask_keeps_tokens_up_to_and_including_the_first_end():
    x = torch.tensor([[4, 1, 0, 0], [4, 5, 6, 7], [1, 1, 0, 0]])
    assert valid_mask(x, 1).tolist() == [[True, True, False, False], [True] * 4,
                                         [True, False, False, False]]
    assert valid_mask(x, None).all()


def test_gumbel_hard_token_is_argmax_of_logits_plus_noise_and_soft_rows_sum_to_one():
    G = generator()
    noise = gumbel_noise(torch.rand(4, L, V))
    tokens, soft = G.gumbel_sample(4, beta=3.0, noise=noise)
    logits = G(tokens)  # teacher forcing on the hard tokens gives the logits they came from
    assert torch.equal(tokens, (logits + noise).argmax(-1))
    torch.testing.assert_close(soft, torch.softmax(3.0 * (logits + noise), -1))
    torch.testing.assert_close(soft.sum(-1), torch.ones(4, L))
    soft.sum().backward()  # the relaxation reaches G's parameters
    assert G.out.weight.grad is not None and G.out.weight.grad.abs().sum() > 0


def test_gumbel_noise_has_the_gumbel_mean():
    g = gumbel_noise(torch.rand(200_000))
    assert abs(g.mean().item() - 0.5772) < 0.01  # Euler-Mascheroni constant


def test_gumbel_rows_after_the_end_are_the_one_hot_pad():
    G = generator(eos=1, pad=0)
    with torch.no_grad():
        G.out.bias[1] = 50.0  # end at once
    tokens, soft = G.gumbel_sample(2, beta=1.0)
    assert tokens[:, 0].tolist() == [1, 1] and (tokens[:, 1:] == 0).all()
    torch.testing.assert_close(soft[:, 1:], F.one_hot(torch.zeros(2, L - 1, dtype=torch.long), V).float())


def test_cnn_discriminator_embeds_one_hot_rows_like_token_ids():
    torch.manual_seed(0)
    D = CNNDiscriminator(V, L, emb_dim=8, windows=[1, 3, L], filters=[4, 5, 6]).eval()
    x = torch.randint(0, V, (3, L))
    torch.testing.assert_close(D(x), D(F.one_hot(x, V).float()))
    assert D(x).shape == (3,) and D.features(x).shape == (3, 15) and D.feature_dim == 15
    with pytest.raises(ConfigError, match="do not fit"):
        CNNDiscriminator(V, L, windows=[2, L + 1], filters=[4, 4])
    with pytest.raises(ConfigError, match="one filter count per window"):
        CNNDiscriminator(V, L, windows=[2, 3], filters=[4])


def test_discriminator_condition_enters_as_a_projection():
    torch.manual_seed(0)
    D = CNNDiscriminator(V, L, emb_dim=8, windows=[2], filters=[4], c_dim=3).eval()
    x, c = torch.randint(0, V, (2, L)), torch.eye(3)[:2]
    expected = D(x) + (D.proj(c) * D.features(x)).sum(1)
    torch.testing.assert_close(D(x, c), expected)


def test_recurrent_discriminator_scores_each_prefix_causally():
    torch.manual_seed(0)
    D = RecurrentDiscriminator(V, L, emb_dim=8, hidden=8, eos=1).eval()
    x = torch.randint(2, V, (2, L))
    scores = D.prefix_scores(x)
    changed = x.clone()
    changed[:, 4] = 2 + (x[:, 4] - 1) % (V - 2)
    torch.testing.assert_close(D.prefix_scores(changed)[:, :4], scores[:, :4])
    ended = x.clone()
    ended[:, 2] = 1  # the sequence ends at position 2: its score is the score of that prefix
    torch.testing.assert_close(D(ended), D.prefix_scores(ended)[:, 2])


def test_transducer_maps_every_position_and_takes_soft_rows():
    torch.manual_seed(0)
    T = Transducer(V, emb_dim=8, hidden=8)
    x = torch.randint(0, V, (2, L))
    assert T(x).shape == (2, L, V)
    torch.testing.assert_close(T(x), T(F.one_hot(x, V).float()))
