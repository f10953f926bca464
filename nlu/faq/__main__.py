"""``python -m nlu.faq import FILE | tune | search TEXT``: manage and try the FAQ knowledge base."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from sqlmodel import Session

from core.db import get_engine, session_scope, upgrade
from core.settings import ROOT, get_settings
from nlu.errors import NLUError
from nlu.faq import store
from nlu.faq.embedder import Embedder, load_embedder
from nlu.faq.kb import load_kb
from nlu.faq.policy import Thresholds, decide
from nlu.faq.service import onnx_dir, thresholds_path
from nlu.faq.tuning import tune_on, validation_set

log = logging.getLogger("nlu.faq")


def cmd_import(path: Path, embedder: Embedder, prune: bool) -> store.ImportReport:
    """Validate the whole file first, then import in one transaction."""
    specs = load_kb(path)
    with session_scope() as session:
        return store.import_kb(session, specs, embedder, prune=prune)


def cmd_tune(embedder: Embedder) -> dict[str, float]:
    """Tune the thresholds on the bot's intent utterances and out-of-scope messages; write them to var/."""
    with Session(get_engine()) as session:
        index = store.load_index(session, embedder, embedder.name)
    val = validation_set(
        index, ROOT / "nlu" / "data" / "bitext_intents.csv", ROOT / "nlu" / "data" / "out_of_scope.txt"
    )
    thresholds, report = tune_on(index, val)
    thresholds.save(thresholds_path(get_settings().var_dir))
    return {"answer": thresholds.answer, "suggest": thresholds.suggest, **{k: round(v, 4) for k, v in report.items()}}


def cmd_search(text: str, embedder: Embedder) -> list[dict[str, object]]:
    """What the bot would do with ``text``."""
    with Session(get_engine()) as session:
        index = store.load_index(session, embedder, embedder.name)
    decision = decide(index.search(text, k=5), Thresholds.load(thresholds_path(get_settings().var_dir)))
    return [
        {
            "decision": decision.action,
            "rank": i,
            "id": h.doc.id,
            "cosine": round(h.cosine, 3),
            "question": h.doc.question,
        }
        for i, h in enumerate(decision.hits, start=1)
    ]


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; exits 2 with a message on bad input."""
    p = argparse.ArgumentParser(prog="python -m nlu.faq", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="import a knowledge-base YAML file (only changes are re-embedded)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--keep-missing", action="store_true", help="keep entries that are not in the file")
    imp.add_argument("--tune", action="store_true", help="re-tune the confidence thresholds afterwards")
    sub.add_parser("tune", help="tune the answer / suggest thresholds")
    srch = sub.add_parser("search", help="show the top entries and the decision for a text")
    srch.add_argument("text")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        upgrade()
        embedder_dir = get_settings().faq_embedder
        var_dir = get_settings().var_dir
        embedder = load_embedder(Path(embedder_dir) if embedder_dir else None, onnx_dir=onnx_dir(var_dir))
        if args.command == "import":
            report = cmd_import(args.file, embedder, prune=not args.keep_missing)
            log.info("%s: %s", args.file, report)
            changed = report.added + report.updated + report.removed + report.embedded
            if args.tune or changed or not thresholds_path(get_settings().var_dir).exists():
                log.info("thresholds: %s", cmd_tune(embedder))
        elif args.command == "tune":
            log.info("thresholds: %s", cmd_tune(embedder))
        else:
            sys.stdout.write(json.dumps(cmd_search(args.text, embedder), indent=2) + "\n")
    except NLUError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
