"""Train a sequence model on item histories with early stopping on validation NDCG@10."""

from __future__ import annotations

import copy
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from recommender.evaluate import evaluate
from recommender.nets import NetConfig, SequenceNet, build_net
from recommender.sequences import left_pad, training_batches

log = logging.getLogger(__name__)
DEFAULT_CONFIG = Path(__file__).with_name("config.yml")
NET_KEYS = ("kind", "dim", "blocks", "heads", "dropout", "max_len", "layout", "positions")


def load_config(path: Path = DEFAULT_CONFIG, **overrides: Any) -> dict[str, Any]:
    """Config file values, then non-None overrides."""
    cfg: dict[str, Any] = yaml.safe_load(path.read_text())
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return cfg


def pick_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class NetScorer:
    """Wraps a trained network as a :class:`recommender.evaluate.Scorer`."""

    def __init__(self, net: SequenceNet, device: torch.device | None = None) -> None:
        self.net = net.eval()
        self.device = device or next(net.parameters()).device

    def score(self, histories: list[list[int]]) -> np.ndarray:
        """Scores [B, n_items + 1] for the newest ``max_len`` items of each history."""
        width = max(1, min(self.net.cfg.max_len, max(map(len, histories))))
        items = torch.from_numpy(left_pad(histories, width)).to(self.device)
        with torch.inference_mode():
            return self.net.predict(items).float().cpu().numpy()


@dataclass
class FitResult:
    """The best network (by validation NDCG@10) and how training went."""

    net: SequenceNet
    best_epoch: int
    best_ndcg: float
    epochs_run: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def fit(
    train: list[list[int]],
    valid: tuple[list[list[int]], list[int]],
    n_items: int,
    cfg: dict[str, Any],
    device: torch.device | None = None,
) -> FitResult:
    """Train ``cfg['kind']`` on ``train`` sequences, early-stopping on ``valid`` (inputs, targets).

    Validation uses full ranking with seen items excluded (NDCG@10).
    """
    device = device or pick_device()
    random.seed(cfg["seed"])
    np.random.seed(cfg["seed"])
    torch.manual_seed(cfg["seed"])
    net = build_net(NetConfig(n_items=n_items, **{k: cfg[k] for k in NET_KEYS if k in cfg})).to(device)
    # weight_decay > 0: decoupled weight decay (AdamW); 0 is plain Adam
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg.get("weight_decay", 0.0))
    # the learning rate is multiplied by lr_decay after lr_patience validations without improvement
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="max", factor=cfg.get("lr_decay", 1.0), patience=cfg.get("lr_patience", 0), threshold=0
    ) if cfg.get("lr_decay", 1.0) < 1 else None  # fmt: skip
    best: tuple[float, int, dict[str, torch.Tensor]] = (-1.0, 0, copy.deepcopy(net.state_dict()))
    history: list[dict[str, float]] = []
    started, epoch = time.time(), 0
    deadline = started + cfg["max_seconds"] if cfg.get("max_seconds") else float("inf")
    for epoch in range(1, cfg["epochs"] + 1):
        loss = _epoch(net, opt, train, cfg, epoch, device)
        out_of_time = time.time() >= deadline
        if epoch % cfg["eval_every"] and epoch != cfg["epochs"] and not out_of_time:
            continue
        ndcg = evaluate(NetScorer(net, device), *valid, n_items, sampled=0)["full"]["ndcg@10"]
        net.train()
        lr = opt.param_groups[0]["lr"]
        history.append({"epoch": epoch, "loss": round(loss, 4), "valid_ndcg@10": ndcg, "lr": lr})
        log.info("epoch %d: loss %.4f, validation NDCG@10 %.4f, lr %.2g", epoch, loss, ndcg, lr)
        if plateau is not None:
            plateau.step(ndcg)
        if ndcg > best[0]:
            best = (ndcg, epoch, copy.deepcopy(net.state_dict()))
        elif epoch - best[1] >= cfg["patience"]:
            log.info("no improvement for %d epochs: stopping", epoch - best[1])
            break
        if out_of_time:
            log.warning("time limit of %s s reached after epoch %d: stopping", cfg["max_seconds"], epoch)
            break
    net.load_state_dict(best[2])
    return FitResult(net.eval(), best[1], best[0], epoch, time.time() - started, history)


def _epoch(
    net: SequenceNet, opt: torch.optim.Optimizer, train: list[list[int]], cfg: dict[str, Any], epoch: int,
    device: torch.device,
) -> float:  # fmt: skip
    net.train()
    batches = list(
        training_batches(
            train,
            max_len=cfg["max_len"],
            batch_size=cfg["batch_size"],
            seed=cfg["seed"] + epoch,
            bucket=cfg.get("bucket", True),
        )
    )
    # Batches group histories of similar length (a batch is only as wide as its longest history), so a
    # per-batch mean would weigh a short history's positions several times more than a long one's:
    # each position's loss is divided by the mean number of positions per batch instead.
    per_batch = max(1.0, sum(int((t > 0).sum()) for _, t in batches) / max(1, len(batches)))
    total = 0.0
    bar = tqdm(batches, desc=f"epoch {epoch}", leave=False)
    for inputs, targets in bar:
        loss = (
            net.loss(torch.from_numpy(inputs).to(device), torch.from_numpy(targets).to(device), cfg["negatives"], "sum")
            / per_batch
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return total / max(1, len(batches))
