"""Fine-tune the FAQ embedder on (user phrasing, FAQ question) paraphrase pairs with in-batch negatives.

MultipleNegativesRankingLoss (sentence-transformers): each phrasing must be closer to its own
FAQ than to every other FAQ in the batch. Batches never hold two pairs of the same FAQ (that
would make a right answer count as a negative).

``python -m nlu.faq.finetune --kb bot/kb/faq.yml --out var/models/faq-embedder`` trains on a
knowledge base's own alternative phrasings; set FAQ_EMBEDDER to the output to use it.
"""

from __future__ import annotations

import argparse
import logging
import random
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from nlu.faq.embedder import MAX_SEQ_LENGTH
from nlu.faq.kb import load_kb
from nlu.model import base_model_path

log = logging.getLogger(__name__)
Pair = tuple[str, str, str]  # (phrasing, FAQ text, FAQ id)


def unique_batches(pairs: list[Pair], batch_size: int, rng: random.Random) -> list[list[Pair]]:
    """Shuffled batches in which every FAQ id appears at most once."""
    pending = pairs[:]
    rng.shuffle(pending)
    batches: list[list[Pair]] = []
    while pending:
        batch: list[Pair] = []
        seen: set[str] = set()
        rest: list[Pair] = []
        for p in pending:
            if len(batch) < batch_size and p[2] not in seen:
                batch.append(p)
                seen.add(p[2])
            else:
                rest.append(p)
        if len(batch) > 1:
            batches.append(batch)
        pending = rest if len(batch) > 1 else []
    return batches


def _tensors(features: dict[str, Any], device: str) -> dict[str, torch.Tensor]:
    """The tensor part of a tokenizer output, on ``device``."""
    return {k: v.to(device) for k, v in features.items() if isinstance(v, torch.Tensor)}


def finetune(
    pairs: list[Pair],
    out: Path,
    *,
    base: Path | None = None,
    epochs: int = 2,
    batch_size: int = 32,
    lr: float = 2e-5,
    seed: int = 13,
    progress: bool = True,
) -> Path:
    """Train from ``base`` (default all-MiniLM-L6-v2) and save a sentence-transformers model to ``out``."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    rng = random.Random(seed)
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = SentenceTransformer(str(base or base_model_path()), device=device, local_files_only=True)
    model.max_seq_length = MAX_SEQ_LENGTH
    loss_fn = MultipleNegativesRankingLoss(model)
    steps = len(unique_batches(pairs, batch_size, random.Random(seed))) * epochs
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * steps), steps)
    model.train()
    for epoch in range(epochs):
        bar = tqdm(unique_batches(pairs, batch_size, rng), desc=f"embedder epoch {epoch + 1}", disable=not progress)
        for batch in bar:
            features = [_tensors(model.tokenize([p[i] for p in batch]), device) for i in (0, 1)]
            loss = loss_fn(features, torch.empty(0))
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    log.info("FAQ embedder saved to %s (%d pairs, %d steps)", out, len(pairs), steps)
    return out


def kb_pairs(kb: Path) -> list[Pair]:
    """(alternative phrasing → question) paraphrase pairs of a knowledge base."""
    pairs: list[Pair] = []
    for spec in load_kb(kb):
        pairs += [(alt, spec.question, spec.id) for alt in spec.alternatives]
    return pairs


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    p = argparse.ArgumentParser(prog="python -m nlu.faq.finetune", description=__doc__)
    p.add_argument("--kb", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    pairs = kb_pairs(args.kb)
    if len(pairs) < 2:
        raise SystemExit(f"{args.kb}: needs at least two alternative phrasings to train on")
    finetune(pairs, args.out, epochs=args.epochs)


if __name__ == "__main__":
    main()
