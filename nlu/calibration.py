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
