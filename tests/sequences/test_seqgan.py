"""SeqGAN's Monte Carlo rewards and policy gradient: the bugs public implementations had."""
import torch
from torch import nn

from gankit.data.text import make_oracle
from gankit.models.seqgan import MovingBaseline, policy_gradient_loss, rollout_rewards
from gankit.nets.sequence import CNNDiscriminator, LSTMGenerator

V, L, B = 12, 5, 4


class RecordingD(nn.Module):
    """Scores ``w_first * x_0 + w_last * x_{L-1} - 5`` and records every call."""

    def __init__(self, w_first=1.0, w_last=0.0):
        super().__init__()
        self.w_first, self.w_last = w_first, w_last
        self.calls, self.modes = [], []

    def forward(self, x, c=None):
        self.calls.append(x.clone())
        self.modes.append(self.training)
        return self.w_first * x[:, 0].float() + self.w_last * x[:, -1].float() - 5.0


def small_generator():
    torch.manual_seed(0)
    return LSTMGenerator(V, L, emb_dim=8, hidden=8)


def test_rewards_have_shape_batch_by_length_and_belong_to_their_sequence():
    G, D = small_generator(), RecordingD()
    x = torch.randint(0, V, (B, L))
    x[:, 0] = torch.tensor([0, 3, 6, 9])  # D's score tells the four sequences apart
    rewards = rollout_rewards(G, D, x, rollouts=3)
    assert rewards.shape == (B, L)
    # every completion keeps x_0, so each reward is exactly its own sequence's score;
    # a [rollouts * B] -> [B, rollouts] reshape would mix the four rows
    expected = torch.sigmoid(x[:, :1].float() - 5.0).expand(B, L)
    torch.testing.assert_close(rewards, expected)


def test_rollouts_keep_the_prefix_and_the_last_reward_is_d_of_the_full_sequence():
    G, D = small_generator(), RecordingD(w_first=0.0, w_last=0.5)
    x = torch.randint(0, V, (B, L))
    rewards = rollout_rewards(G, D, x, rollouts=3)
    assert len(D.calls) == L  # L - 1 rollout batches, then the sequences themselves
    for t, completed in enumerate(D.calls[:-1]):
        assert completed.shape == (3 * B, L)
        torch.testing.assert_close(completed[:, :t + 1], x[:, :t + 1].repeat(3, 1))
    torch.testing.assert_close(D.calls[-1], x)
    torch.testing.assert_close(rewards[:, -1], torch.sigmoid(0.5 * x[:, -1].float() - 5.0))


def test_rewards_are_detached_deterministic_and_scored_in_eval_mode():
    G = small_generator()
    D = CNNDiscriminator(V, L, emb_dim=8, windows=[2, 3], filters=[8, 8], dropout=0.5).train()
    x = torch.randint(0, V, (B, L))
    torch.manual_seed(1)
    first = rollout_rewards(G, D, x, rollouts=2)
    torch.manual_seed(1)
    second = rollout_rewards(G, D, x, rollouts=2)
    torch.testing.assert_close(first, second)  # dropout would make these differ
    assert not first.requires_grad
    assert D.training  # the mode is given back
    recording = RecordingD().train()
    rollout_rewards(G, recording, x, rollouts=2)
    assert recording.modes == [False] * L and recording.training


def test_policy_gradient_raises_the_probability_of_the_rewarded_token():
    torch.manual_seed(0)
    G = LSTMGenerator(5, 1, emb_dim=4, hidden=4)  # a bandit: one token per sequence
    x = torch.arange(5).view(5, 1)
    reward = (x == 2).float()
    before = G.log_probs(x).detach().exp().view(-1)
    loss = policy_gradient_loss(G.log_probs(x), reward)
    loss.backward()
    with torch.no_grad():
        for p in G.parameters():
            p -= 0.5 * p.grad
    after = G.log_probs(x).detach().exp().view(-1)
    assert after[2] > before[2] + 0.01
    assert (after[[0, 1, 3, 4]] < before[[0, 1, 3, 4]]).all()


def test_policy_gradient_loss_averages_valid_tokens_and_stops_gradients_of_advantages():
    logp = torch.tensor([[-1.0, -2.0], [-3.0, -4.0]], requires_grad=True)
    adv = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    mask = torch.tensor([[True, True], [True, False]])
    loss = policy_gradient_loss(logp, adv, mask)
    torch.testing.assert_close(loss, torch.tensor((1 * 1 + 2 * 2 + 3 * 3) / 3))
    loss.backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[-1 / 3, -2 / 3], [-1.0, 0.0]]))
    assert adv.grad is None


def test_moving_baseline_by_hand_and_in_the_state_dict():
    base = MovingBaseline(2, decay=0.5)
    mask = torch.ones(2, 2, dtype=torch.bool)
    first = base(torch.tensor([[1.0, 2.0], [3.0, 6.0]]), mask)
    torch.testing.assert_close(first, torch.tensor([2.0, 4.0]))  # the first batch's mean
    second = base(torch.tensor([[4.0, 0.0], [6.0, 0.0]]), mask)
    torch.testing.assert_close(second, torch.tensor([2.0, 4.0]))  # the average before this batch
    torch.testing.assert_close(base.value, torch.tensor([0.5 * 2 + 0.5 * 5, 0.5 * 4 + 0.5 * 0]))
    assert set(base.state_dict()) == {"value", "count"} and int(base.count) == 2


def test_rewards_of_the_oracle_task_stay_probabilities():
    G = make_oracle(V, L, seed=0)
    D = CNNDiscriminator(V, L, emb_dim=8, windows=[2], filters=[4])
    rewards = rollout_rewards(G, D, G.sample(B), rollouts=2)
    assert ((rewards > 0) & (rewards < 1)).all()
