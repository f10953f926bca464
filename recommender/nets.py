"""Sequence models over item histories: SASRec-style self-attention and a GRU baseline.

Both share one contract: ``forward(items)`` gives a hidden state per position ([B, L, D]),
``loss`` is next-item cross-entropy (over all items, or over the target plus sampled negatives),
``predict`` scores every item for the last position ([B, n_items + 1], column 0 = padding, -inf).
Output scores are dot products with the input item embeddings (tied weights).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class NetConfig:
    """Architecture of a behaviour model."""

    kind: str = "sasrec"  # sasrec | gru
    n_items: int = 0
    dim: int = 64
    blocks: int = 2
    heads: int = 1
    dropout: float = 0.1
    max_len: int = 200
    layout: str = "pre-norm"  # SASRec blocks: pre-norm (GELU) | original (the SASRec paper's code, ReLU)
    positions: str = "end"  # SASRec position index counted from the newest item (end) or the oldest (start)

    def to_dict(self) -> dict[str, object]:
        """Plain dict for config.json."""
        return asdict(self)


class SequenceNet(nn.Module):
    """Shared parts: item embeddings, the loss and scoring."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.items = nn.Embedding(cfg.n_items + 1, cfg.dim, padding_idx=0)
        nn.init.normal_(self.items.weight, std=cfg.dim**-0.5)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def loss(
        self, items: torch.Tensor, targets: torch.Tensor, negatives: int = 0, reduction: str = "mean"
    ) -> torch.Tensor:
        """Next-item cross-entropy over the positions that have a target (their mean, or ``sum``).

        Args:
            items: [B, L] input item ids (0 = padding).
            targets: [B, L] next item per position (0 = no target).
            negatives: 0 for the full softmax over all items, else the number of uniformly
                sampled negatives shared by the batch (the target's logit is always included).
            reduction: ``mean`` or ``sum`` over the positions.
        """
        hidden = self(items)  # [B, L, D]
        keep = targets > 0
        h, t = hidden[keep], targets[keep]  # [N, D], [N]
        if negatives <= 0:
            logits = h @ self.items.weight[1:].T  # [N, n_items]
            return F.cross_entropy(logits, t - 1, reduction=reduction)
        sampled = torch.randint(1, self.cfg.n_items + 1, (negatives,), device=items.device)
        pos = (h * self.items(t)).sum(-1, keepdim=True)  # [N, 1]
        neg = h @ self.items(sampled).T  # [N, negatives]
        neg = neg.masked_fill(sampled.unsqueeze(0) == t.unsqueeze(1), float("-inf"))
        logits = torch.cat([pos, neg], dim=1)
        return F.cross_entropy(logits, torch.zeros_like(t), reduction=reduction)

    def predict(self, items: torch.Tensor) -> torch.Tensor:
        """Scores of every item after the last position: [B, n_items + 1] (column 0 is -inf)."""
        last = self(items)[:, -1]  # [B, D]
        scores = last @ self.items.weight.T
        scores[:, 0] = float("-inf")
        return scores


class OriginalBlock(nn.Module):
    """A block laid out as in the SASRec paper's code (and SASRec+'s): the attention's residual
    starts from the normalised queries, the feed-forward's from its normalised input; ReLU."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim, eps=1e-8)
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ffn_norm = nn.LayerNorm(dim, eps=1e-8)
        self.linear1, self.linear2 = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """x [B, L, D], mask [B*heads, L, L] (True = blocked), keep [B, L, 1] (0 on padding)."""
        q = self.attn_norm(x)
        x = q + self.self_attn(q, x, x, attn_mask=mask, need_weights=False)[0]
        x = self.ffn_norm(x)
        x = x + self.dropout(self.linear2(torch.relu(self.dropout(self.linear1(x)))))
        return x * keep


class OriginalStack(nn.Module):
    """``blocks`` original-layout blocks (same state-dict layout as ``nn.TransformerEncoder``'s)."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(OriginalBlock(cfg.dim, cfg.heads, cfg.dropout) for _ in range(cfg.blocks))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Run the blocks in order."""
        for layer in self.layers:
            x = layer(x, mask, keep)
        return x


class SASRec(SequenceNet):
    """Causal self-attention over the last ``max_len`` items (Kang & McAuley 2018).

    ``layout`` picks the blocks: ``pre-norm`` (PyTorch's encoder layer, GELU) or ``original``
    (:class:`OriginalBlock`). ``positions`` counts the position index from the newest item
    (``end``: the last position always has the same embedding) or from the oldest item of the
    window (``start``, as SASRec+ does with right padding).

    Initialisation follows SASRec+ (Klenitskiy & Vasilev 2023): item and position embeddings and
    linear layers from N(0, 0.02), so at the start the √d-scaled item signal dominates the
    position noise; each block is initialised on its own (``nn.TransformerEncoder`` copies one).
    """

    INIT_STD = 0.02

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__(cfg)
        if cfg.layout not in ("pre-norm", "original") or cfg.positions not in ("end", "start"):
            raise ValueError(f"unknown layout {cfg.layout!r} or positions {cfg.positions!r}")
        self.positions = nn.Embedding(cfg.max_len, cfg.dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.blocks: OriginalStack | nn.TransformerEncoder
        if cfg.layout == "original":
            self.blocks = OriginalStack(cfg)
        else:
            layer = nn.TransformerEncoderLayer(
                cfg.dim, cfg.heads, dim_feedforward=cfg.dim, dropout=cfg.dropout,
                activation="gelu", batch_first=True, norm_first=True,
            )  # fmt: skip
            self.blocks = nn.TransformerEncoder(layer, cfg.blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-8 if cfg.layout == "original" else 1e-5)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.normal_(self.items.weight, std=self.INIT_STD)
        nn.init.normal_(self.positions.weight, std=self.INIT_STD)
        with torch.no_grad():
            self.items.weight[0].zero_()
        block: Any  # TransformerEncoderLayer or OriginalBlock: the same attribute names
        for block in self.blocks.layers:
            nn.init.xavier_uniform_(block.self_attn.in_proj_weight)
            for linear in (block.self_attn.out_proj, block.linear1, block.linear2):
                nn.init.normal_(linear.weight, std=self.INIT_STD)
                nn.init.zeros_(linear.bias)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """Hidden state per position: [B, L, D] for items [B, L] (left-padded)."""
        length = items.shape[1]
        pad = items == 0  # [B, L]
        keep = ~pad.unsqueeze(-1)
        pos = torch.arange(length, device=items.device)
        if self.cfg.positions == "end":
            index = (pos + self.cfg.max_len - length).expand_as(items)
        else:  # from the oldest item of the window: left padding shifts each row
            index = (pos.unsqueeze(0) - pad.sum(1, keepdim=True)).clamp(min=0)
        x = self.items(items) * self.cfg.dim**0.5 + self.positions(index)
        x = self.dropout(x) * keep
        causal = torch.ones(length, length, dtype=torch.bool, device=items.device).triu(1)  # True = blocked
        # a padded key is blocked too, except on the diagonal so that no row is fully masked
        blocked = causal.unsqueeze(0) | pad.unsqueeze(1)
        blocked &= ~torch.eye(length, dtype=torch.bool, device=items.device)
        mask = blocked.repeat_interleave(self.cfg.heads, dim=0)  # [B*heads, L, L]
        x = self.blocks(x, mask, keep) if isinstance(self.blocks, OriginalStack) else self.blocks(x, mask=mask)
        return self.norm(x) * keep


class GRURec(SequenceNet):
    """A GRU over the item embeddings (the recurrent baseline, GRU4Rec-style, trained the same way)."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__(cfg)
        self.dropout = nn.Dropout(cfg.dropout)
        self.gru = nn.GRU(cfg.dim, cfg.dim, num_layers=max(1, cfg.blocks // 2), batch_first=True)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """Hidden state per position: [B, L, D] for items [B, L] (left-padded, so the last is the newest)."""
        out, _ = self.gru(self.dropout(self.items(items)))
        return self.dropout(out)


def build_net(cfg: NetConfig) -> SequenceNet:
    """The network named by ``cfg.kind``."""
    nets: dict[str, type[SequenceNet]] = {"sasrec": SASRec, "gru": GRURec}
    if cfg.kind not in nets:
        raise ValueError(f"unknown model kind {cfg.kind!r}; expected one of {sorted(nets)}")
    return nets[cfg.kind](cfg)
