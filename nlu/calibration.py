"""Confidence calibration: temperature scaling (Guo et al. 2017)."""

from __future__ import annotations

import torch


def fit_temperature(logits: torch.Tensor, gold: torch.Tensor) -> float:
    """Temperature T minimising the NLL of softmax(logits / T) on held-out data.

    Args:
        logits: [N,C] raw class scores.
        gold: [N] class ids.
    """
    if len(gold) == 0:
        return 1.0
    logits, gold = logits.clone(), gold.clone()  # out of inference mode, so autograd may use them
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=100)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), gold)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def fit_sentiment_bias(
    logits: torch.Tensor, gold: torch.Tensor, *, neutral: int, negative: int, max_neutral_negative: float
) -> list[float]:
    """Offsets for the sentiment logits that maximise macro-averaged recall on held-out data.

    Training weighs the rare classes up, which makes the head quick to call a calm problem
    statement negative; the offsets move the decision back. Among offsets (neutral fixed at 0,
    the others on a grid from -2 to 2) that call at most ``max_neutral_negative`` of the neutral
    messages negative, the one with the best macro-recall wins (ties: the smallest change).

    Args:
        logits: [N,S] sentiment logits; gold: [N] class ids.
    """
    n_classes = logits.shape[1]
    if len(gold) == 0:
        return [0.0] * n_classes
    grid = torch.arange(-2.0, 2.01, 0.1)
    others = [c for c in range(n_classes) if c != neutral]
    best, best_key = [0.0] * n_classes, (-1.0, 0.0)
    for combo in torch.cartesian_prod(*[grid] * len(others)).reshape(-1, len(others)):
        bias = torch.zeros(n_classes)
        bias[others] = combo
        pred = (logits + bias).argmax(-1)
        neutral_rows = gold == neutral
        if neutral_rows.any() and float((pred[neutral_rows] == negative).float().mean()) > max_neutral_negative:
            continue
        recalls = [float((pred[gold == c] == c).float().mean()) for c in range(n_classes) if (gold == c).any()]
        key = (round(sum(recalls) / len(recalls), 6), -float(combo.abs().sum()))
        if key > best_key:
            best, best_key = bias.tolist(), key
    return [round(b, 2) for b in best]
