"""Fine-tune the joint intent + sentiment model: ``python -m nlu.train [--out DIR] [--key value]``.

Steps: 1 read config · 2 load and split data · 3 build model · 4 train with early
stopping · 5 calibrate (temperature) · 6 save with a model card. Multi-task batches: each
example carries the labels it has (intent, sentiment, entity tags), the rest is masked.
"""

from __future__ import annotations

import argparse
import copy
import logging
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm
from transformers import AutoTokenizer, PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from core.settings import ROOT
from nlu import data as nlu_data
from nlu import onnx_backend
from nlu.calibration import fit_temperature
from nlu.data import SENTIMENTS, Example
from nlu.encoding import bio_labels, encode, tag_names
from nlu.evaluate import evaluate, forward_batches
from nlu.model import JointClassifier, ModelMeta, base_model_path, build, save
from nlu.oos import load_oos, scores_at, tune_threshold

log = logging.getLogger(__name__)
DEFAULT_CONFIG = ROOT / "nlu" / "config.yml"


def load_config(path: Path = DEFAULT_CONFIG, **overrides: Any) -> dict[str, Any]:
    """Config file values, then non-None overrides."""
    cfg = yaml.safe_load(path.read_text())
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return cfg


def seed_everything(seed: int) -> None:
    """Fix Python, NumPy and torch seeds."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _paths(items: list[str]) -> list[Path]:
    return [p if p.is_absolute() else ROOT / p for p in map(Path, items or [])]


def load_examples(cfg: dict[str, Any]) -> tuple[list[Example], list[Example]]:
    """Intent examples (capped, per config) and sentiment examples."""
    intents: list[Example] = []
    for p in _paths(cfg["rasa_nlu"]):
        intents += nlu_data.load_rasa_yaml(p)
    csv_intents: list[Example] = []
    for p in _paths(cfg["intent_csv"]):
        csv_intents += nlu_data.load_intent_csv(p)
    capped = nlu_data.cap_per_label(csv_intents, cfg["cap_per_intent"], cfg["seed"])
    intents += nlu_data.augment_ids(capped, float(cfg.get("id_augment", 0.0)), cfg["seed"])
    sentiments: list[Example] = []
    for p in _paths(cfg["sentiment_csv"]):
        sentiments += nlu_data.load_sentiment_csv(p)
    return intents, sentiments


def _labels(batch: list[Example], meta: ModelMeta) -> tuple[torch.Tensor, torch.Tensor]:
    i_idx = {n: i for i, n in enumerate(meta.intents)}
    s_idx = {n: i for i, n in enumerate(meta.sentiments)}
    intent = torch.tensor([i_idx[e.intent] if e.intent else -100 for e in batch])
    sentiment = torch.tensor([s_idx[e.sentiment] if e.sentiment else -100 for e in batch])
    return intent, sentiment


def _batches(train: list[Example], batch_size: int, rng: random.Random, grouped: bool) -> list[list[Example]]:
    """One epoch's batches: length-grouped (less padding) or plain shuffled."""
    if grouped:
        return nlu_data.length_grouped_batches(train, batch_size, rng)
    order = train[:]
    rng.shuffle(order)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _score(m: dict[str, float]) -> float:
    return m.get("intent_accuracy", 0.0) + 0.5 * m.get("sentiment_macro_recall", 0.0) + 0.25 * m.get("entity_f1", 0.0)


def train_loop(
    model: JointClassifier,
    tokenizer: PreTrainedTokenizerBase,
    meta: ModelMeta,
    train: list[Example],
    dev: list[Example],
    cfg: dict[str, Any],
    device: torch.device,
) -> dict[str, float]:
    """Fine-tune in place with AdamW + linear schedule; restores the best dev epoch."""
    batch_size = int(cfg["batch_size"]) * (2 if device.type == "cuda" else 1)
    grouped = bool(cfg.get("group_by_length", False))
    steps_per_epoch = len(_batches(train, batch_size, random.Random(0), grouped))
    total = steps_per_epoch * int(cfg["epochs"])
    opt = torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))
    sched = get_linear_schedule_with_warmup(opt, int(total * float(cfg["warmup_ratio"])), total)
    rng = random.Random(int(cfg["seed"]))
    tag_set = tag_names(meta.entities)
    best, best_state, bad_epochs = -1.0, None, 0
    best_metrics: dict[str, float] = {}
    for epoch in range(int(cfg["epochs"])):
        model.train()
        batches = _batches(train, batch_size, rng, grouped)
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg['epochs']}", unit="step")
        for batch in bar:
            enc = encode(tokenizer, [e.text for e in batch], meta.max_length, offsets=True)
            tags = bio_labels(batch, enc.pop("offset_mapping"), tag_set).to(device)
            intent, sentiment = (t.to(device) for t in _labels(batch, meta))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                out = model(**{k: v.to(device) for k, v in enc.items()})
            loss = model.loss(
                out, intent, sentiment, tags, float(cfg["sentiment_weight"]), float(cfg.get("entity_weight", 1.0))
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        metrics = evaluate(model, tokenizer, meta, dev, device)
        log.info("epoch %d dev %s", epoch + 1, {k: round(v, 4) for k, v in metrics.items()})
        if _score(metrics) > best:
            best, best_metrics, bad_epochs = _score(metrics), metrics, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad_epochs += 1
            if bad_epochs > int(cfg["patience"]):
                log.info("early stopping after epoch %d", epoch + 1)
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return best_metrics


def calibrate(
    model: JointClassifier,
    tokenizer: PreTrainedTokenizerBase,
    meta: ModelMeta,
    dev: list[Example],
    device: torch.device,
    oos_file: Path | None = None,
    max_in_scope_drop: float = 1.0,
) -> None:
    """Fit the intent temperature on dev data, then tune the fallback threshold (both into ``meta``).

    With an out-of-scope file the threshold maximises dev in-scope accuracy + OOS recall on
    its tuning half, and OOS recall on its test half goes into the metrics.
    """
    i_ex = [e for e in dev if e.intent]
    logits, _, _ = forward_batches(model, tokenizer, meta, [e.text for e in i_ex], device)
    gold = torch.tensor([meta.intents.index(str(e.intent)) for e in i_ex], dtype=torch.long)
    meta.temperature = fit_temperature(logits, gold)
    if oos_file is None:
        return
    tune, test = load_oos(oos_file)
    probs = torch.softmax(logits / meta.temperature, -1)
    in_conf, in_correct = probs.max(-1).values, probs.argmax(-1) == gold

    def top_conf(texts: list[str]) -> torch.Tensor:
        oos_logits, _, _ = forward_batches(model, tokenizer, meta, texts, device)
        return torch.softmax(oos_logits / meta.temperature, -1).max(-1).values

    meta.threshold = tune_threshold(in_conf, in_correct, top_conf(tune), max_in_scope_drop)
    at = scores_at(meta.threshold, in_conf, in_correct, top_conf(test))
    meta.metrics["dev_in_scope_accuracy_at_threshold"] = at["in_scope_accuracy"]
    meta.metrics["oos_recall_heldout"] = at["oos_recall"]


def write_card(out: Path, meta: ModelMeta, cfg: dict[str, Any], n_train: int, seconds: float) -> None:
    """A short model card next to the weights."""
    lines = [
        "# Store-bot NLU model (intent + sentiment)",
        "",
        f"- base encoder: {meta.base_model}",
        f"- intents: {len(meta.intents)}; sentiments: {', '.join(meta.sentiments)}",
        f"- entity types (BIO head): {', '.join(meta.entities) or 'none'}; regex rules add email/order/invoice ids",
        f"- trained on {n_train} examples in {seconds:.0f} s; epochs ≤ {cfg['epochs']}, lr {cfg['lr']}",
        f"- temperature {meta.temperature:.3f}; nlu_fallback below calibrated confidence {meta.threshold}",
        "",
        "## Dev metrics (stratified dev split of the training data)",
        "",
        *[f"- {k}: {v:.4f}" for k, v in meta.metrics.items()],
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))


def run(cfg: dict[str, Any], out: Path, *, encoder_path: Path | None = None, tiny: bool = False) -> ModelMeta:
    """Train end to end and save atomically into ``out``. Returns the saved metadata."""
    started = time.time()
    seed_everything(int(cfg["seed"]))
    device = pick_device()
    # 2 · data
    intents, sentiments = load_examples(cfg)
    i_train, i_dev = nlu_data.stratified_split(intents, float(cfg["dev_fraction"]), int(cfg["seed"]))
    s_train, s_dev = nlu_data.stratified_split(sentiments, float(cfg["dev_fraction"]), int(cfg["seed"]))
    i_train = nlu_data.oversample(i_train, int(cfg["min_per_intent"]), int(cfg["seed"]))
    train = i_train + s_train * max(1, int(cfg["sentiment_repeat"]))
    log.info("data: %d intent + %d sentiment train, %d dev", len(i_train), len(s_train), len(i_dev) + len(s_dev))
    # 3 · model
    meta = ModelMeta(
        intents=sorted({str(e.intent) for e in intents}),
        sentiments=list(SENTIMENTS),
        entities=sorted({ent.entity for e in intents if e.annotated for ent in e.entities}),
        max_length=int(cfg["max_length"]),
        threshold=float(cfg["fallback_threshold"]),
    )
    src = encoder_path or (Path(cfg["base_model"]) if cfg.get("base_model") else base_model_path())
    tokenizer = AutoTokenizer.from_pretrained(src)
    model = build(meta, src, config_only=tiny).to(device)
    # 4 · train
    meta.metrics = train_loop(model, tokenizer, meta, train, i_dev + s_dev, cfg, device)
    # 5 · calibrate confidences, tune the nlu_fallback threshold
    oos = cfg.get("out_of_scope")
    drop = float(cfg.get("max_in_scope_drop", 1.0))
    calibrate(model, tokenizer, meta, i_dev, device, (ROOT / oos) if oos else None, drop)
    # 6 · save (to a temp dir, then swap in: a half-written model is never served)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save(model.cpu(), tokenizer, meta, tmp)
    onnx_backend.export(model, tmp, quantize=True)
    write_card(tmp, meta, cfg, len(train), time.time() - started)
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    log.info("saved %s (dev %s) in %.0f s", out, meta.metrics, time.time() - started)
    return meta


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    from core.settings import get_settings

    p = argparse.ArgumentParser(prog="python -m nlu.train", description=__doc__)
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--out", type=Path, default=None, help="output dir (default: settings.nlu_model_dir)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--cap-per-intent", type=int, dest="cap_per_intent")
    p.add_argument("--batch-size", type=int, dest="batch_size")
    p.add_argument("--lr", type=float)
    p.add_argument("--base-model", dest="base_model")
    p.add_argument("--sentiment-csv", action="append", dest="sentiment_csv", help="replaces the config's list")
    p.add_argument("--intent-csv", action="append", dest="intent_csv", help="replaces the config's list")
    args = vars(p.parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config_path, out = args.pop("config"), args.pop("out") or get_settings().nlu_model_dir
    cfg = load_config(config_path, **args)
    run(cfg, Path(out))


if __name__ == "__main__":
    main()
