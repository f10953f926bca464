"""Fine-tune the joint intent + sentiment model: ``python -m nlu.train [--out DIR] [--key value]``.

Steps: 1 read config · 2 load and split data · 3 build model · 4 train with early
stopping · 5 calibrate (temperature) · 6 save with a model card. Multi-task batches: each
example carries the labels it has (intent, sentiment, entity tags), the rest is masked.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm
from transformers import AutoTokenizer, PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from core.settings import ROOT
from nlu import data as nlu_data
from nlu import evalset, fingerprint, onnx_backend
from nlu.augment import augment
from nlu.calibration import fit_sentiment_bias, fit_temperature
from nlu.data import SENTIMENTS, Example
from nlu.encoding import bio_labels, encode, tag_names
from nlu.errors import DataError, NLUError
from nlu.evalset import Labelled
from nlu.evaluate import evaluate, forward_batches
from nlu.model import JointClassifier, ModelMeta, base_model_path, build, save
from nlu.oos import accepted, load_oos, scores_at, tune_fallback, tune_threshold

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
    for p in _paths(cfg.get("customer_csv") or []):
        intents += nlu_data.load_customer_csv(p)
    if cfg.get("retrieval_intent"):  # FAQ topics without an intent: the KB's phrasings and customer messages
        intents += nlu_data.faq_topic_examples(
            str(cfg["retrieval_intent"]),
            _paths([cfg["faq_kb"]] if cfg.get("faq_kb") else []),
            _paths(cfg.get("faq_topic_csv") or []),
        )
    if cfg.get("oos_intent") and cfg.get("out_of_scope"):  # the OOS file trains the out-of-scope class
        oos = [t for part in load_oos(_paths([cfg["out_of_scope"]])[0]) for t in part]
        intents += [Example(t, intent=str(cfg["oos_intent"]), annotated=True) for t in oos]
    if cfg.get("entity_types"):
        intents = nlu_data.keep_entity_types(intents, set(cfg["entity_types"]))
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


def sentiment_class_weights(train: list[Example], names: list[str]) -> torch.Tensor:
    """[S] square-root inverse-frequency weights of the sentiment labels in ``train`` (absent classes 1).

    Full inverse frequency made the head call calm problem statements negative; the square root
    still lifts the rare positive class.
    """
    counts = torch.tensor([sum(e.sentiment == n for e in train) for n in names], dtype=torch.float32)
    present = counts > 0
    weights = torch.ones(len(names))
    weights[present] = (counts[present].sum() / (present.sum() * counts[present])).sqrt()
    return weights


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
    classes = sentiment_class_weights(train, meta.sentiments) if cfg.get("balance_sentiment") else None
    classes = classes.to(device) if classes is not None else None
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
                out,
                intent,
                sentiment,
                tags,
                float(cfg["sentiment_weight"]),
                float(cfg.get("entity_weight", 1.0)),
                classes,
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


def _gold_classes(items: list[Labelled], meta: ModelMeta) -> list[str | None]:
    """The class each message should get: its intent, else the out-of-scope or FAQ-topic class (None: no class)."""
    by_kind = {"oos": meta.oos_intent, "faq": meta.retrieval_intent}
    out: list[str | None] = []
    for i in items:
        gold = i.intent if i.kind == "intent" else by_kind[i.kind]
        out.append(gold if gold in meta.intents else None)
    return out


def as_examples(items: list[Labelled], meta: ModelMeta) -> list[Example]:
    """Labelled messages as dev examples: their class (``_gold_classes``) and sentiment."""
    return [
        Example(i.text, gold, i.sentiment, i.entities, annotated=True)
        for i, gold in zip(items, _gold_classes(items, meta), strict=True)
    ]


def _fit_sentiment(
    model: JointClassifier,
    tokenizer: PreTrainedTokenizerBase,
    meta: ModelMeta,
    items: list[Labelled],
    device: torch.device,
    max_neutral_negative: float,
) -> None:
    """Sentiment logit offsets from the labelled messages (see ``fit_sentiment_bias``)."""
    rated = [i for i in items if i.sentiment]
    if not rated:
        return
    _, logits, _ = forward_batches(model, tokenizer, meta, [i.text for i in rated], device)
    gold = torch.tensor([meta.sentiments.index(str(i.sentiment)) for i in rated])
    meta.sentiment_bias = fit_sentiment_bias(
        logits, gold, neutral=meta.sentiments.index("neutral"), negative=meta.sentiments.index("negative"),
        max_neutral_negative=max_neutral_negative,
    )  # fmt: skip


def calibrate_realistic(
    model: JointClassifier,
    tokenizer: PreTrainedTokenizerBase,
    meta: ModelMeta,
    items: list[Labelled],
    device: torch.device,
    max_in_scope_drop: float = 1.0,
    max_neutral_negative: float | None = None,
    max_oos_accept: float | None = None,
) -> None:
    """Temperature, fallback rule (and sentiment offsets) fit on realistic messages (``nlu.evalset`` dev).

    In-scope messages and, when the model has an out-of-scope class, out-of-scope ones (gold: that
    class) fit the temperature. The fallback rule (a confidence threshold and a ceiling on the
    out-of-scope class's probability, ``nlu.oos.tune_fallback``) then lets at most
    ``max_oos_accept`` of the out-of-scope messages through where it can, giving up at most
    ``max_in_scope_drop`` of in-scope accuracy; a message the model puts in a no-intent class is a
    fallback whatever the rule.
    """
    oos_idx = meta.intents.index(meta.oos_intent) if meta.oos_intent in meta.intents else -1
    used = [(i, g) for i, g in zip(items, _gold_classes(items, meta), strict=True) if g is not None]
    if not used:
        return
    logits, _, _ = forward_batches(model, tokenizer, meta, [i.text for i, _ in used], device)
    gold = torch.tensor([meta.intents.index(str(g)) for _, g in used], dtype=torch.long)
    meta.temperature = fit_temperature(logits, gold)
    probs = torch.softmax(logits / meta.temperature, -1)
    conf, pred = probs.max(-1)
    oos_p = probs[:, oos_idx] if oos_idx >= 0 else torch.zeros_like(conf)
    fallback = torch.tensor([name in meta.fallback_classes for name in meta.intents])
    served = torch.where(fallback[pred], torch.zeros_like(conf), conf)  # a no-intent class: always a fallback
    in_scope = torch.tensor([i.kind == "intent" for i, _ in used])
    is_oos = torch.tensor([i.kind == "oos" for i, _ in used])
    oos_items = [i for i in items if i.kind == "oos"]
    if oos_idx < 0 and oos_items:  # no class for them: their confidences are scored separately
        o_logits, _, _ = forward_batches(model, tokenizer, meta, [i.text for i in oos_items], device)
        oos_conf = torch.softmax(o_logits / meta.temperature, -1).max(-1).values
        oos_oos = torch.zeros_like(oos_conf)
    else:
        oos_conf, oos_oos = served[is_oos], oos_p[is_oos]
    correct = (pred == gold)[in_scope]
    meta.threshold, meta.oos_threshold = tune_fallback(
        served[in_scope], oos_p[in_scope], correct, oos_conf, oos_oos, max_in_scope_drop, max_oos_accept
    )
    if max_neutral_negative is not None:
        _fit_sentiment(model, tokenizer, meta, items, device, max_neutral_negative)
    kept = accepted(served[in_scope], oos_p[in_scope], meta.threshold, meta.oos_threshold)
    meta.metrics["realistic_dev_intent_accuracy"] = float((kept & correct).float().mean())
    if len(oos_conf):
        through = accepted(oos_conf, oos_oos, meta.threshold, meta.oos_threshold)
        meta.metrics["realistic_dev_oos_rejected"] = 1.0 - float(through.float().mean())


def write_card(out: Path, meta: ModelMeta, cfg: dict[str, Any], n_train: int, seconds: float) -> None:
    """A short model card next to the weights."""
    lines = [
        "# Store-bot NLU model (intent + sentiment)",
        "",
        f"- base encoder: {meta.base_model}",
        f"- intents: {len(meta.intents)}; sentiments: {', '.join(meta.sentiments)}",
        f"- entity types (BIO head): {', '.join(meta.entities) or 'none'}; regex rules add email/order/invoice ids",
        f"- trained on {n_train} examples in {seconds:.0f} s; epochs ≤ {cfg['epochs']}, lr {cfg['lr']}",
        f"- temperature {meta.temperature:.3f}; nlu_fallback below calibrated confidence {meta.threshold:.4f}"
        f" and for the classes {', '.join(sorted(meta.fallback_classes)) or '(none)'}"
        + (f"; also when P({meta.oos_intent}) ≥ {meta.oos_threshold:.2f}" if meta.oos_threshold < 1.0 else ""),
        f"- sentiment logit offsets {meta.sentiment_bias or 'none'}; learned entities need confidence"
        f" {meta.entity_threshold}",
        "",
        "## Dev metrics ("
        + (
            "the realistic dev split: epoch choice and calibration"
            if cfg.get("calibration_set")
            else "stratified dev split of the training data"
        )
        + ")",
        "",
        *[f"- {k}: {v:.4f}" for k, v in meta.metrics.items()],
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))


def run(cfg: dict[str, Any], out: Path, *, encoder_path: Path | None = None, tiny: bool = False) -> ModelMeta:
    """Train end to end and save atomically into ``out``. Returns the saved metadata."""
    started = time.time()
    inputs = fingerprint.inputs_hash()  # as read now: an edit during training retrains on the next run
    seed_everything(int(cfg["seed"]))
    device = pick_device()
    # 2 · data
    intents, sentiments = load_examples(cfg)
    i_train, i_dev = nlu_data.stratified_split(intents, float(cfg["dev_fraction"]), int(cfg["seed"]))
    s_train, s_dev = nlu_data.stratified_split(sentiments, float(cfg["dev_fraction"]), int(cfg["seed"]))
    i_train = nlu_data.oversample(i_train, int(cfg["min_per_intent"]), int(cfg["seed"]))
    # after the split, so no copy of a dev example is trained on
    i_train += [e for e in i_train if e.source == "customer"] * (max(1, int(cfg.get("customer_repeat", 1))) - 1)
    i_train = augment(i_train, float(cfg.get("chat_noise", 0.0)), int(cfg["seed"]))
    train = i_train + s_train * max(1, int(cfg["sentiment_repeat"]))
    log.info("data: %d intent + %d sentiment train, %d dev", len(i_train), len(s_train), len(i_dev) + len(s_dev))
    # 3 · model
    meta = ModelMeta(
        intents=sorted({str(e.intent) for e in intents}),
        sentiments=list(SENTIMENTS),
        entities=sorted({ent.entity for e in intents if e.annotated for ent in e.entities}),
        max_length=int(cfg["max_length"]),
        threshold=float(cfg["fallback_threshold"]),
        entity_threshold=float(cfg.get("entity_threshold", 0.0)),
    )
    if cfg.get("oos_intent") in meta.intents:
        meta.oos_intent = str(cfg["oos_intent"])
    if cfg.get("retrieval_intent") in meta.intents:
        meta.retrieval_intent = str(cfg["retrieval_intent"])
    src = encoder_path or (Path(cfg["base_model"]) if cfg.get("base_model") else base_model_path())
    tokenizer = AutoTokenizer.from_pretrained(src)
    model = build(meta, src, config_only=tiny).to(device)
    # 4 · train
    realistic_path = _paths([cfg["calibration_set"]])[0] if cfg.get("calibration_set") else None
    realistic = evalset.load(realistic_path) if realistic_path is not None and realistic_path.exists() else []
    # the best epoch is the one that reads realistic messages best, when there are some
    select = as_examples(realistic, meta) if realistic else i_dev + s_dev
    meta.metrics = train_loop(model, tokenizer, meta, train, select, cfg, device)
    # 5 · calibrate confidences, tune the nlu_fallback threshold
    oos = cfg.get("out_of_scope")
    drop = float(cfg.get("max_in_scope_drop", 1.0))
    if realistic:
        neg, accept = cfg.get("max_neutral_negative"), cfg.get("max_oos_accept")
        calibrate_realistic(
            model, tokenizer, meta, realistic, device, drop,
            None if neg is None else float(neg), None if accept is None else float(accept),
        )  # fmt: skip
    else:
        calibrate(model, tokenizer, meta, i_dev, device, (ROOT / oos) if oos else None, drop)
    # 6 · save (to a temp dir, then swap in: a half-written model is never served)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save(model.cpu(), tokenizer, meta, tmp)
    onnx_backend.export(model, tmp, quantize=True)
    write_card(tmp, meta, cfg, len(train), time.time() - started)
    fingerprint.write_stamp(tmp, inputs, fingerprint.options(cfg, load_config()))
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    log.info("saved %s (dev %s) in %.0f s", out, meta.metrics, time.time() - started)
    return meta


def recalibrate(cfg: dict[str, Any], model_dir: Path) -> ModelMeta:
    """Refit temperature, fallback rule and sentiment offsets of a saved model on the config's realistic dev split.

    No retraining: after a change to the calibration settings or the dev split, seconds instead of
    half an hour. The weights and the input stamp stay as they were.
    """
    from nlu.model import META_FILE, load

    if not cfg.get("calibration_set"):
        raise DataError("recalibration needs calibration_set in the config (a realistic dev split)")
    path = _paths([cfg["calibration_set"]])[0]
    if not path.exists():
        raise DataError(f"{path}: calibration set not found")
    model, tokenizer, meta = load(model_dir)
    meta.sentiment_bias = []
    neg, accept = cfg.get("max_neutral_negative"), cfg.get("max_oos_accept")
    calibrate_realistic(
        model,
        tokenizer,
        meta,
        evalset.load(path),
        torch.device("cpu"),
        max_in_scope_drop=float(cfg.get("max_in_scope_drop", 1.0)),
        max_neutral_negative=None if neg is None else float(neg),
        max_oos_accept=None if accept is None else float(accept),
    )
    tmp = model_dir / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(meta), indent=2))
    tmp.replace(model_dir / META_FILE)
    with (model_dir / "README.md").open("a", encoding="utf-8") as card:
        card.write(
            f"\n## Recalibrated on {path.name}\n\n- temperature {meta.temperature:.3f}; threshold"
            f" {meta.threshold:.4f}; P({meta.oos_intent}) ceiling {meta.oos_threshold:.2f}; sentiment offsets"
            f" {meta.sentiment_bias or 'none'}\n"
            + "".join(f"- {k}: {v:.4f}\n" for k, v in meta.metrics.items() if k.startswith("realistic_dev"))
        )
    log.info("recalibrated %s: threshold %.2f, oos ceiling %.2f", model_dir, meta.threshold, meta.oos_threshold)
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
    p.add_argument(
        "--recalibrate",
        type=Path,
        metavar="MODEL_DIR",
        help="no training: refit the calibration of a saved model on the config's realistic dev split",
    )
    args = vars(p.parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config_path, out, again = (
        args.pop("config"),
        args.pop("out") or get_settings().nlu_model_dir,
        args.pop("recalibrate"),
    )
    cfg = load_config(config_path, **args)
    if again is not None:
        try:
            recalibrate(cfg, again)
        except NLUError as exc:
            raise SystemExit(f"cannot recalibrate {again}: {exc}") from exc
        return
    run(cfg, Path(out))


if __name__ == "__main__":
    main()
