"""NLU benchmark: ``python -m benchmarks.nlu [--sections latency,bitext,...] [--model DIR]``.

The whole table of the NLU issue is one command (about 1 h 10 min on 2 cores with DIET cached,
1 h 30 min without): ``python -m benchmarks.nlu --sections latency,bitext,banking77,diet,sentiment``.

Sections (each prints a table; all results go to benchmarks/results/nlu.json):

- ``latency``: parse latency over HTTP, one request at a time, and throughput with 8
  concurrent clients, for each inference backend (torch, ONNX fp32, ONNX int8) serving the
  same model. Texts: 300 BANKING77 test queries (from --data, default ../shared/data) or, when
  absent, 300 Bitext utterances from the repository. Intent agreement with torch is reported
  so a faster backend is only kept at equal accuracy.
- ``banking77``: BANKING77 official train → official test, intent head only, top-1 accuracy.
- ``sentiment``: TweetEval (train_reconstructed.csv) trained jointly with the bot's intents,
  macro-averaged recall on the official test split.
- ``bitext``: the bot's own intents. Protocol: a deterministic 10 % test split of
  nlu/data/bitext_intents.csv (by hash of the text, stratified by intent), the model trained
  with nlu/config.yml on the rest, accuracy on the full test split.
- ``realistic``: the bot's model on realistic customer messages (nlu/data/eval, test split, never
  trained or tuned on) next to the same model on Bitext's held-out 10 %: intent accuracy, fallback
  share, out-of-scope messages given an intent, spurious entities, entity precision, sentiment
  (nlu/scoring.py), and the first reply of the real stack to each message (benchmarks/first_reply.py).
  Trains the same model as ``bitext`` (once, when both are asked for; ``--split-model`` reuses one).
- ``realistic_baseline``: the code and config before issue 19 (a git worktree of ``BASELINE_REV``)
  trained on the same split and scored the same way, for the side-by-side table.
- ``diet``: the same-machine baseline, Rasa 3.6 DIET on BANKING77 trained and served in the
  Rasa venv (see benchmarks/diet.py; cached by its exact config, ``--retrain-diet`` to redo).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import parse_over_http, parses_per_second, percentile, table, write_results
from core.settings import ROOT, Settings, get_settings
from core.stack import Service, free_port, start, stop_all, wait_healthy

log = logging.getLogger("bench.nlu")
BACKENDS = ("torch", "onnx", "onnx-int8")


def latency_texts(data_dir: Path, n: int = 300) -> tuple[str, list[str]]:
    """BANKING77 test queries if available, else Bitext utterances shipped in the repo."""
    banking = data_dir / "banking77" / "test.csv"
    path, column = (banking, "text") if banking.exists() else (ROOT / "nlu" / "data" / "bitext_intents.csv", "text")
    with path.open(encoding="utf-8") as f:
        rows = [r[column] for r in csv.DictReader(f)]
    step = max(1, len(rows) // n)
    return path.parent.name + "/" + path.name, rows[::step][:n]


def _serve(backend: str, model: Path, var: Path) -> tuple[Service, str]:
    port = free_port()
    settings = Settings(var_dir=var, nlu_model_dir=model, nlu_port=port, nlu_backend=backend)
    svc = Service(f"nlu-{backend}", ["python", "-m", "nlu.server"], settings.url(port) + "/health")
    svc.argv[0] = os.environ.get("PYTHON", str(ROOT / ".venv" / "bin" / "python"))
    start(svc, settings)
    wait_healthy(svc, 180)
    return svc, settings.url(port) + "/model/parse"


def bench_latency(model: Path, data_dir: Path) -> dict[str, Any]:
    """Latency and throughput per backend over HTTP."""
    source, texts = latency_texts(data_dir)
    results: dict[str, Any] = {"texts": source, "n": len(texts), "backends": {}}
    reference: list[str] | None = None
    for backend in BACKENDS:
        var = Path(tempfile.mkdtemp(prefix="bench-nlu-"))
        svc, url = _serve(backend, model, var)
        try:
            times, intents = parse_over_http(url, texts)
            reference = reference or intents
            results["backends"][backend] = {
                "p50_ms": round(percentile(times, 50), 2),
                "p95_ms": round(percentile(times, 95), 2),
                "p99_ms": round(percentile(times, 99), 2),
                "parses_per_s_8_clients": round(parses_per_second(url, texts), 1),
                "intent_agreement_with_torch": round(
                    sum(a == b for a, b in zip(intents, reference, strict=True)) / len(texts), 4
                ),
            }
        finally:
            stop_all([svc])
    return results


def parse_all(predictor: Any, texts: list[str], batch: int = 256) -> list[dict[str, Any]]:
    """Parse many texts in batches (the service's own batch path)."""
    return [r for i in range(0, len(texts), batch) for r in predictor.parse_batch(texts[i : i + batch])]


def _test_split(text: str) -> bool:
    return int(hashlib.sha256(text.lower().encode()).hexdigest(), 16) % 10 == 0


def train_bitext_split(work: Path) -> tuple[Path, Path, float]:
    """Train with nlu/config.yml on 90 % of the shipped Bitext data: (model dir, held-out CSV, seconds)."""
    from nlu.train import load_config, run

    src = ROOT / "nlu" / "data" / "bitext_intents.csv"
    rows = list(csv.DictReader(src.open(encoding="utf-8")))
    train_csv, test_csv = work / "bitext_train.csv", work / "bitext_test.csv"
    for path, keep in ((train_csv, False), (test_csv, True)):
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(r for r in rows if _test_split(r["text"]) == keep)
    started = time.time()
    run(load_config(intent_csv=[str(train_csv)]), work / "model")
    shutil.copy(test_csv, work / "model" / "bitext_test.csv")  # so --split-model can reuse this model
    return work / "model", test_csv, time.time() - started


def card_seconds(model: Path) -> float:
    """Training time of a saved model, from the model card ``nlu.train`` wrote (0 if absent)."""
    import re

    card = model / "README.md"
    m = re.search(r"examples in (\d+) s", card.read_text()) if card.exists() else None
    return float(m.group(1)) if m else 0.0


def bench_bitext(model: Path, test_csv: Path, seconds: float) -> dict[str, Any]:
    """Top-1 accuracy on the held-out 10 % of Bitext (the templated test set)."""
    from nlu.data import load_intent_csv
    from nlu.predict import load_predictor

    test = load_intent_csv(test_csv)
    predictor = load_predictor(model, backend="onnx")
    preds = parse_all(predictor, [e.text for e in test])
    correct = sum(p["intent"]["name"] == e.intent for p, e in zip(preds, test, strict=True))
    return {
        "protocol": "hash split 90/10 of nlu/data/bitext_intents.csv, config nlu/config.yml",
        "test_examples": len(test),
        "accuracy": round(correct / len(test), 4),
        "train_seconds": round(seconds),
    }


REALISTIC = ROOT / "nlu" / "data" / "eval"


def score_realistic(model: Path) -> dict[str, Any]:
    """Model-level figures (nlu.scoring) on the realistic dev and test splits, served with ONNX fp32."""
    from nlu import evalset
    from nlu.predict import load_predictor
    from nlu.scoring import confusions, score

    predictor = load_predictor(model, backend="onnx")
    out: dict[str, Any] = {}
    for name, file in (("dev", evalset.DEV_FILE), ("test", evalset.TEST_FILE)):
        items = evalset.load(REALISTIC / file)
        parses = parse_all(predictor, [i.text for i in items])
        out[name] = score(items, parses)
        if name == "test":
            out["test_confusions"] = confusions(items, parses)
    return out


def first_reply_on_stack(model: Path, work: Path, split: str = "test", **overrides: Any) -> dict[str, Any]:
    """A realistic split through the real stack (benchmarks.first_reply), one conversation per message.

    ``overrides``: settings of the stack (e.g. ``faq_agree_min_confidence=2`` turns that rule off).
    """
    from benchmarks import first_reply
    from core.internal_tokens import with_internal_tokens
    from core.stack import up
    from nlu import evalset

    settings = with_internal_tokens(
        Settings(var_dir=work / "var", nlu_model_dir=model, nlu_port=free_port(), action_port=free_port(),
                 rasa_port=free_port(), gateway_port=free_port(), **overrides)
    )  # fmt: skip
    items = evalset.load(REALISTIC / (evalset.TEST_FILE if split == "test" else evalset.DEV_FILE))
    facts = first_reply.BotFacts.load(ROOT / "bot" / "data" / "rules.yml", ROOT / "bot" / "kb" / "faq.yml")
    services = up(settings)
    try:
        started = time.perf_counter()
        outcomes = first_reply.run(settings.url(settings.rasa_port), settings.rasa_token, items, facts)
        seconds = time.perf_counter() - started
    finally:
        stop_all(services)
    first_reply.dump(work / f"first_reply_{split}.jsonl", items, outcomes)
    return {**first_reply.summary(items, outcomes), "seconds_per_message": round(seconds / len(items), 3)}


BASELINE_REV = "4ed3e2a"  # main before issue 19: Bitext templates only, threshold calibrated on them
_BASELINE_SCRIPT = """
import json, sys
from pathlib import Path
from nlu.train import load_config, run
from nlu.predict import load_predictor
out, train_csv, texts = Path(sys.argv[1]), sys.argv[2], json.loads(Path(sys.argv[3]).read_text())
run(load_config(intent_csv=[train_csv]), out)
p = load_predictor(out, backend="onnx")
res = [r for i in range(0, len(texts), 256) for r in p.parse_batch(texts[i : i + 256])]
Path(sys.argv[4]).write_text(json.dumps(res))
"""


def bench_realistic_baseline(work: Path, rev: str = BASELINE_REV) -> dict[str, Any]:
    """The code and config of ``rev`` (a git worktree), trained on the same Bitext split, scored like ours."""
    import json
    import subprocess

    from nlu import evalset
    from nlu.scoring import score

    tree = work / "baseline-tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT, check=True)
    try:
        held_out = work / "bitext_test.csv"
        train_csv = work / "bitext_train.csv"
        rows = list(csv.DictReader((ROOT / "nlu" / "data" / "bitext_intents.csv").open(encoding="utf-8")))
        _write_csv(train_csv, [r for r in rows if not _test_split(r["text"])])
        _write_csv(held_out, [r for r in rows if _test_split(r["text"])])
        test = evalset.load(REALISTIC / evalset.TEST_FILE)
        bitext = csv_rows(held_out)
        texts = work / "texts.json"
        texts.write_text(json.dumps([i.text for i in test] + [r["text"] for r in bitext]))
        parses = work / "parses.json"
        env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
        started = time.time()
        subprocess.run([sys.executable, "-c", _BASELINE_SCRIPT, str(work / "baseline-model"), str(train_csv),
                        str(texts), str(parses)], cwd=tree, env=env, check=True)  # fmt: skip
        got = json.loads(parses.read_text())
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    ours, templated = got[: len(test)], got[len(test) :]
    right = sum(p["intent"]["name"] == r["intent"] for p, r in zip(templated, bitext, strict=True))
    return {
        "protocol": f"the code and nlu/config.yml of {rev} (before issue 19), trained on the same 90 % Bitext "
        "hash split, served with ONNX fp32 by its own predictor, scored by nlu.scoring on realistic_test.jsonl",
        "test": score(test, ours),
        "templated_bitext_accuracy": round(right / len(bitext), 4),
        "train_seconds": round(time.time() - started),
    }


def bench_realistic(model: Path, bitext: dict[str, Any], work: Path, *, stack: bool = True) -> dict[str, Any]:
    """Realistic customer text next to templated text, for one model trained on Bitext's 90 % split."""
    out: dict[str, Any] = {
        "protocol": "model: nlu/config.yml trained on the 90 % Bitext hash split + the shipped customer data, "
        "temperature and fallback rule (confidence threshold + out-of-scope ceiling) fit on "
        "nlu/data/eval/realistic_dev.jsonl; figures on realistic_test.jsonl "
        "(never trained or tuned on), served with ONNX fp32; templated = the same model on Bitext's held-out 10 %",
        **score_realistic(model),
        "templated_bitext_accuracy": bitext["accuracy"],
    }
    if stack:
        out["first_reply"] = first_reply_on_stack(model, work)
    return out


def csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file with a header."""
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def bench_banking77(data_dir: Path, work: Path, epochs: int, limit: int) -> dict[str, Any]:
    """BANKING77: train on the official train split (intent head only), top-1 accuracy on the official test."""
    from nlu.predict import load_predictor
    from nlu.train import load_config, run

    rows = csv_rows(data_dir / "banking77" / "train.csv")[: limit or None]
    train_csv = _write_csv(work / "b77_train.csv", [{"text": r["text"], "intent": r["category"]} for r in rows])
    cfg = load_config(
        rasa_nlu=[],
        intent_csv=[str(train_csv)],
        sentiment_csv=[],
        cap_per_intent=0,
        min_per_intent=0,
        id_augment=0.0,
        epochs=epochs,
        out_of_scope="",
        fallback_threshold=0.0,
        group_by_length=True,
        customer_csv=[],
        oos_intent="",
        retrieval_intent="",
        calibration_set="",
        chat_noise=0.0,
        max_length=64,
    )  # fmt: skip  (BANKING77 alone, as published: none of the bot's data, classes or calibration)
    started = time.time()
    run(cfg, work / "b77_model")
    seconds = time.time() - started
    test = csv_rows(data_dir / "banking77" / "test.csv")
    predictor = load_predictor(work / "b77_model", backend="onnx")
    preds = [p["intent"]["name"] for p in parse_all(predictor, [r["text"] for r in test])]
    accuracy = sum(p == r["category"] for p, r in zip(preds, test, strict=True)) / len(test)
    return {
        "protocol": f"official train ({len(rows)} queries) → official test ({len(test)}), top-1, MiniLM-L6, "
        f"{epochs} epochs max with early stopping on a 10 % dev split of train, length-grouped batches",
        "accuracy": round(accuracy, 4),
        "train_seconds": round(seconds),
    }


def bench_sentiment(data_dir: Path, work: Path, epochs: int, limit: int) -> dict[str, Any]:
    """TweetEval sentiment trained jointly with the bot's intents; macro-recall on the official test."""
    from nlu.evaluate import macro_recall
    from nlu.predict import load_predictor
    from nlu.train import load_config, run

    rows = csv_rows(data_dir / "sentiment" / "train_reconstructed.csv")[: limit or None]
    train_csv = _write_csv(work / "tweets.csv", [{"text": r["text"], "label": r["label"]} for r in rows])
    cfg = load_config(sentiment_csv=[str(train_csv)], sentiment_repeat=1, epochs=epochs, group_by_length=True)
    started = time.time()
    run(cfg, work / "sent_model")
    seconds = time.time() - started
    test = csv_rows(data_dir / "sentiment" / "test.csv")
    predictor = load_predictor(work / "sent_model", backend="onnx")
    names = predictor.meta.sentiments
    preds = [p["sentiment"]["label"] for p in parse_all(predictor, [r["text"] for r in test])]
    recall = macro_recall([names.index(p) for p in preds], [int(r["label"]) for r in test], len(names))
    return {
        "protocol": f"TweetEval train_reconstructed ({len(rows)} tweets) + the bot's intent data, joint training, "
        f"{epochs} epochs max, length-grouped batches → official test ({len(test)}), macro-averaged recall",
        "macro_recall": round(recall, 4),
        "train_seconds": round(seconds),
    }


def print_realistic(r: dict[str, Any]) -> None:
    """The realistic section's tables."""
    keys = ["intent_accuracy", "fallback_share", "oos_confident_wrong", "faq_topic_fallback", "spurious_entity_rate",
            "entity_precision", "entity_recall", "sentiment_macro_recall", "neutral_called_negative"]  # fmt: skip
    rows = [[k, r["dev"][k], r["test"][k]] for k in keys]
    rows.append(["templated: Bitext held-out accuracy", "", r["templated_bitext_accuracy"]])
    print(f"realistic customer messages (test: {r['test']['in_scope_n']} in scope, {r['test']['oos_n']} out of scope)")
    print(table(["measure", "realistic dev", "realistic test"], rows))
    if "first_reply" in r:
        fr = r["first_reply"]
        head = ["messages", "n", "right", "clarify_right", "clarify_other", "unknown", "wrong"]
        print(table(head, [[k, *(fr[k][h] for h in head[1:])] for k in ("in_domain", "out_of_scope")]))


def main() -> None:
    """Run the chosen sections, print tables, write benchmarks/results/nlu.json."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.nlu")
    p.add_argument("--sections", default="latency,bitext")
    p.add_argument("--model", type=Path, default=get_settings().nlu_model_dir, help="model for the latency section")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="public data sets")
    p.add_argument("--epochs", type=int, default=5, help="max epochs for banking77")
    p.add_argument("--sentiment-epochs", type=int, default=1, help="max epochs for sentiment (about 26 min each)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training rows (smoke runs)")
    p.add_argument("--diet-epochs", type=int, default=10, help="DIET epochs for the diet section")
    p.add_argument("--retrain-diet", action="store_true", help="train DIET even if a cached result matches")
    p.add_argument("--split-model", type=Path, help="bitext/realistic: a model already trained on the 90 %% split "
                   "(its dir must hold bitext_test.csv)")  # fmt: skip
    p.add_argument("--no-stack", action="store_true", help="realistic: model figures only, no first-reply run")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    results: dict[str, Any] = {}
    sections = set(args.sections.split(","))
    if "latency" in sections:
        results["latency"] = lat = bench_latency(args.model, args.data)
        keys = ["p50_ms", "p95_ms", "p99_ms", "parses_per_s_8_clients", "intent_agreement_with_torch"]
        rows = [[b, *(r[k] for k in keys)] for b, r in lat["backends"].items()]
        print(f"parse latency over HTTP, {lat['n']} texts from {lat['texts']}")
        print(table(["backend", "p50 ms", "p95 ms", "p99 ms", "parses/s (8 clients)", "agreement"], rows))
    if sections & {"bitext", "realistic"}:
        work = Path(tempfile.mkdtemp(prefix="bench-bitext-"))
        split_model, held_out, seconds = (
            (args.split_model, args.split_model / "bitext_test.csv", card_seconds(args.split_model))
            if args.split_model else train_bitext_split(work)
        )  # fmt: skip
        results["bitext"] = bx = bench_bitext(split_model, held_out, seconds)
        print(
            table(
                ["data set", "protocol", "test n", "accuracy", "train s"],
                [["Bitext 27 intents", bx["protocol"], bx["test_examples"], bx["accuracy"], bx["train_seconds"]]],
            )
        )
        if "realistic" in sections:
            results["realistic"] = rz = bench_realistic(split_model, bx, work, stack=not args.no_stack)
            print_realistic(rz)
    for name, bench in (("banking77", bench_banking77), ("sentiment", bench_sentiment)):
        if name in sections:
            work = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
            # one entry per epoch budget, so a shorter run does not replace a longer one
            epochs = args.epochs if name == "banking77" else args.sentiment_epochs
            results[f"{name}@{epochs}ep"] = r = bench(args.data, work, epochs, args.limit)
            metric = "accuracy" if "accuracy" in r else "macro_recall"
            print(
                table(
                    ["data set", "protocol", metric, "train s"], [[name, r["protocol"], r[metric], r["train_seconds"]]]
                )
            )
    if "realistic_baseline" in sections:
        results["realistic_baseline"] = rb = bench_realistic_baseline(Path(tempfile.mkdtemp(prefix="bench-base-")))
        keys = ["intent_accuracy", "fallback_share", "oos_confident_wrong", "spurious_entity_rate", "entity_precision",
                "sentiment_macro_recall", "neutral_called_negative"]  # fmt: skip
        print(table(["baseline " + BASELINE_REV, *keys, "Bitext held-out"],
                    [["realistic test", *(rb["test"][k] for k in keys), rb["templated_bitext_accuracy"]]]))  # fmt: skip
    if "diet" in sections:
        from benchmarks.diet import bench_diet

        results["diet"] = d = bench_diet(
            args.data, args.diet_epochs, latency_texts(args.data)[1], retrain=args.retrain_diet, limit=args.limit
        )
        keys = ["accuracy", "train_seconds", "train_peak_rss_gib", "p95_ms", "parses_per_s_8_clients"]
        print(table(["baseline", "protocol", *keys], [["Rasa DIET", d["protocol"], *(d[k] for k in keys)]]))
    if args.limit:
        log.warning("--limit %d: a smoke run, results not written", args.limit)
        return
    write_results("nlu", results, merge=True)


if __name__ == "__main__":
    main()
