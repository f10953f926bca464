"""The behaviour-model contract on tiny data: shapes, padding, learning, metrics, baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recommender.baselines import ItemKNN, Popularity
from recommender.evaluate import evaluate
from recommender.fit import NetScorer, fit, load_config
from recommender.metrics import mask_seen, sampled_ranks, target_ranks
from recommender.nets import NetConfig, SASRec, build_net
from recommender.sequences import leave_one_out, left_pad, training_batches, validation_view

N_ITEMS = 12


def cyclic_sequences(users: int = 60) -> list[list[int]]:
    """Each user walks the cycle 1→2→…→12→1 from a different start: the next item is always predictable."""
    return [[(start + i) % N_ITEMS + 1 for i in range(8 + start % 5)] for start in range(users)]


@pytest.mark.parametrize("kind", ["sasrec", "gru"])
def test_predict_shape_padding_and_width(kind: str) -> None:
    torch.manual_seed(0)
    net = build_net(NetConfig(kind=kind, n_items=N_ITEMS, dim=16, max_len=10)).eval()
    with torch.inference_mode():
        narrow = net.predict(torch.tensor([[0, 3, 4, 5]]))
        wide = net.predict(torch.from_numpy(left_pad([[3, 4, 5]], 10)))
    assert narrow.shape == (1, N_ITEMS + 1) and torch.isinf(narrow[0, 0])
    if kind == "sasrec":  # padding is masked out: the width of the left padding changes nothing
        assert torch.allclose(narrow[:, 1:], wide[:, 1:], atol=1e-5)


@pytest.mark.parametrize(("kind", "negatives"), [("sasrec", 0), ("gru", 0), ("sasrec", 6)])
def test_fit_learns_the_cycle(kind: str, negatives: int) -> None:
    split = leave_one_out(cyclic_sequences())
    cfg = load_config(kind=kind, dim=16, max_len=10, epochs=30, patience=30, batch_size=16, lr=1e-2,
                      negatives=negatives, dropout=0.0)  # fmt: skip
    result = fit(split.train, validation_view(split), N_ITEMS, cfg, device=torch.device("cpu"))
    metrics = evaluate(NetScorer(result.net), split.test_inputs, split.test_targets, N_ITEMS, sampled=5)
    assert metrics["full_unfiltered"]["hr@10"] > 0.9
    assert metrics["full_unfiltered"]["ndcg@10"] > 0.8
    assert result.history and 1 <= result.best_epoch <= result.epochs_run


@pytest.mark.parametrize("decay", [0.5, 1.0])
def test_the_learning_rate_drops_on_a_plateau_only_when_configured(decay: float) -> None:
    split = leave_one_out(cyclic_sequences(20))
    cfg = load_config(kind="gru", dim=8, max_len=10, epochs=12, patience=12, batch_size=16, lr=1e-2,
                      lr_decay=decay, lr_patience=0, dropout=0.0)  # fmt: skip
    lrs = [h["lr"] for h in fit(split.train, validation_view(split), N_ITEMS, cfg, device=torch.device("cpu")).history]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] == 1e-2
    assert (lrs[-1] < 1e-2) == (decay < 1)  # the cycle is learnt within a few epochs: validation stops improving


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model kind 'bert'"):
        build_net(NetConfig(kind="bert", n_items=3))


def test_split_and_batches() -> None:
    split = leave_one_out([[1, 2, 3, 4], [5, 6]])
    assert split.train == [[1, 2], [5, 6]] and split.valid_targets == [3] and split.test_targets == [4]
    assert validation_view(split) == ([[1, 2]], [3])
    batches = list(training_batches([[1, 2, 3, 4], [5, 6], [7]], max_len=2, batch_size=8, seed=0))
    assert len(batches) == 1
    inputs, targets = batches[0]
    assert inputs.tolist() == [[0, 5], [2, 3]] and targets.tolist() == [[0, 6], [3, 4]]


def test_metrics() -> None:
    scores = np.array([[-np.inf, 0.9, 0.5, 0.1], [-np.inf, 0.2, 0.3, 0.8]])
    targets = np.array([2, 3])
    assert target_ranks(scores, targets).tolist() == [1, 0]
    assert target_ranks(mask_seen(scores, [[1], [2]], targets), targets).tolist() == [0, 0]
    assert sampled_ranks(scores, targets, np.array([[3], [1]])).tolist() == [0, 0]


def test_baselines() -> None:
    seqs = [[1, 2], [1, 2], [1, 3], [4]]
    pop = Popularity(seqs, 4)
    assert pop.score([[4]])[0].argmax() == 1
    knn = ItemKNN(seqs, 4, neighbours=2)
    scores = knn.score([[2]])[0]
    assert scores[1] > scores[3] and scores[4] == 0  # 1 co-occurs with 2; 3 and 4 never do
    result = evaluate(pop, [[4]], [1], 4, sampled=2)
    assert result["full"]["hr@10"] == 1.0


def test_sasrec_starts_small_and_each_block_on_its_own() -> None:
    torch.manual_seed(0)
    net = build_net(NetConfig(kind="sasrec", n_items=500, dim=32, blocks=2, max_len=50))
    assert isinstance(net, SASRec)
    assert abs(float(net.items.weight[1:].detach().std()) - 0.02) < 0.003
    assert abs(float(net.positions.weight.detach().std()) - 0.02) < 0.003  # not N(0, 1): the item signal dominates
    first, second = list(net.blocks.layers)
    assert not torch.equal(first.linear1.weight, second.linear1.weight)


@pytest.mark.parametrize("kind", ["sasrec", "gru"])
def test_summed_loss_counts_every_position_once(kind: str) -> None:
    torch.manual_seed(0)
    net = build_net(NetConfig(kind=kind, n_items=30, dim=16, blocks=2, max_len=8)).eval()
    items = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]])
    targets = torch.tensor([[0, 0, 4, 5, 6], [2, 3, 4, 5, 6]])
    mean, total = net.loss(items, targets), net.loss(items, targets, reduction="sum")
    assert torch.allclose(total, mean * 8)  # 3 + 5 positions with a target


@pytest.mark.parametrize(("layout", "positions"), [("original", "end"), ("original", "start"), ("pre-norm", "start")])
def test_sasrec_variants_ignore_padding_and_learn(layout: str, positions: str) -> None:
    torch.manual_seed(0)
    cfg = NetConfig(kind="sasrec", n_items=N_ITEMS, dim=16, max_len=10, layout=layout, positions=positions)
    net = build_net(cfg).eval()
    with torch.inference_mode():
        narrow = net.predict(torch.tensor([[3, 4, 5]]))
        wide = net.predict(torch.from_numpy(left_pad([[3, 4, 5]], 10)))
        shifted = net.predict(torch.tensor([[9, 3, 4, 5]]))  # one more (older) item moves every position
    assert torch.allclose(narrow[:, 1:], wide[:, 1:], atol=1e-5)
    assert not torch.allclose(narrow[:, 1:], shifted[:, 1:], atol=1e-3)
    split = leave_one_out(cyclic_sequences())
    fit_cfg = load_config(kind="sasrec", dim=16, max_len=10, epochs=30, patience=30, batch_size=16, lr=1e-2,
                          dropout=0.0, layout=layout, positions=positions)  # fmt: skip
    result = fit(split.train, validation_view(split), N_ITEMS, fit_cfg, device=torch.device("cpu"))
    metrics = evaluate(NetScorer(result.net), split.test_inputs, split.test_targets, N_ITEMS, sampled=0)
    assert metrics["full_unfiltered"]["hr@10"] > 0.9


def test_position_counting_matters_and_unknown_layouts_are_refused() -> None:
    torch.manual_seed(0)
    end = build_net(NetConfig(kind="sasrec", n_items=N_ITEMS, dim=16, max_len=10)).eval()
    start = build_net(NetConfig(kind="sasrec", n_items=N_ITEMS, dim=16, max_len=10, positions="start")).eval()
    start.load_state_dict(end.state_dict())  # same weights, only the position index differs
    with torch.inference_mode():
        items = torch.tensor([[3, 4, 5]])
        assert not torch.allclose(end.predict(items)[:, 1:], start.predict(items)[:, 1:], atol=1e-4)
    with pytest.raises(ValueError, match="unknown layout 'post-norm'"):
        build_net(NetConfig(kind="sasrec", n_items=3, layout="post-norm"))


def test_random_batches_mix_lengths_and_cover_every_history() -> None:
    seqs = [[1] * n for n in range(2, 42)]  # 40 histories of 40 different lengths
    bucketed = list(training_batches(seqs, max_len=50, batch_size=8, seed=3))
    mixed = list(training_batches(seqs, max_len=50, batch_size=8, seed=3, bucket=False))
    for batches in (bucketed, mixed):
        assert sum(len(inputs) for inputs, _ in batches) == 40
        assert sum(int((t > 0).sum()) for _, t in batches) == sum(n - 1 for n in range(2, 42))
    spread = [int((t > 0).sum(1).max() - (t > 0).sum(1).min()) for _, t in mixed]
    assert max(spread) > 7 >= max(int((t > 0).sum(1).max() - (t > 0).sum(1).min()) for _, t in bucketed)


def test_weight_decay_and_the_time_limit() -> None:
    split = leave_one_out(cyclic_sequences(20))
    norms = []
    for decay in (0.0, 0.5):
        cfg = load_config(kind="gru", dim=8, max_len=10, epochs=50, patience=50, batch_size=16, lr=1e-2,
                          dropout=0.0, weight_decay=decay, max_seconds=1e-6)  # fmt: skip
        result = fit(split.train, validation_view(split), N_ITEMS, cfg, device=torch.device("cpu"))
        assert result.epochs_run == 1 and result.best_epoch == 1 and len(result.history) == 1  # stopped, best kept
        norms.append(float(result.net.gru.weight_hh_l0.detach().norm()))
    assert norms[1] < norms[0]  # decoupled decay shrinks the weights
