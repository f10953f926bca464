"""Sentiment-monitor benchmark: ``python -m benchmarks.monitoring [--sections quiet,spikes,throughput]``.

Replay protocol. Messages are the TweetEval sentiment test split (../shared/data/sentiment,
12,284 texts, 32 % negative), arriving as a Poisson stream over five intent topics. A message's
"negative" is the gold label (``--labels gold``) or our NLU model's prediction (``--labels nlu``,
the served model scores every text once, which is what production sees).

- ``quiet``: a week with no incident at ``--rate`` messages/hour; every firing notification is a
  false alert.
- ``spikes``: for each volume (messages/hour in the affected topic), ``--trials`` runs of two
  days of normal traffic followed by a sustained +50 % relative rise of the negative rate in
  that topic (32 % → 48 %) for three hours. Reported: the detection delay (stream minutes from
  the spike's start to the incident's firing notification), misses (not within the three hours),
  notifications per incident, and false alerts before the spike.
- ``throughput``: messages/minute through NLU batch scoring plus detection (2 cores).

Results: benchmarks/results/monitoring.json; docs/BENCHMARKS.md quotes them.
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import percentile, table, write_results
from core.settings import ROOT
from monitoring.detect import DetectorConfig
from monitoring.rules import RuleConfig
from monitoring.stream import Monitor, TurnIn

log = logging.getLogger("bench.monitoring")
HOUR = 3600.0
TOPICS = {"payment_issue": 0.2, "track_order": 0.35, "get_refund": 0.15, "create_account": 0.1, "greet": 0.2}
SPIKE_INTENT = "payment_issue"


@dataclass
class Pool:
    """Texts split by whether they count as negative."""

    negative: list[str]
    other: list[str]

    @property
    def rate(self) -> float:
        """The share of negative texts."""
        return len(self.negative) / (len(self.negative) + len(self.other))


def load_pool(data: Path, labels: str) -> Pool:
    """The test split, split by gold label or by the served NLU model's prediction."""
    rows = list(csv.DictReader((data / "sentiment" / "test.csv").open()))
    texts = [r["text"] for r in rows]
    if labels == "gold":
        negative = [r["label_name"] == "negative" for r in rows]
    else:
        negative = [lab == "negative" for lab in score_with_nlu(texts)]
    return Pool([t for t, n in zip(texts, negative, strict=True) if n],
                [t for t, n in zip(texts, negative, strict=True) if not n])  # fmt: skip


def score_with_nlu(texts: list[str], batch: int = 256) -> list[str]:
    """Sentiment labels from the served NLU model (var/models/nlu)."""
    from nlu.predict import load_predictor

    predictor = load_predictor(ROOT / "var" / "models" / "nlu", backend="onnx")
    out: list[str] = []
    for i in range(0, len(texts), batch):
        out += [str((p.get("sentiment") or {}).get("label")) for p in predictor.parse_batch(texts[i : i + batch])]
    return out


def stream(rng: np.random.Generator, pool: Pool, start: float, hours: float, per_hour: dict[str, float],
           p_negative: dict[str, float]) -> list[TurnIn]:  # fmt: skip
    """Poisson arrivals per intent; each message negative with its intent's probability."""
    turns: list[TurnIn] = []
    for intent, rate in per_hour.items():
        n = rng.poisson(rate * hours)
        p = p_negative.get(intent, pool.rate)
        for t in rng.uniform(start, start + hours * HOUR, n):
            neg = bool(rng.random() < p)
            texts = pool.negative if neg else pool.other
            turns.append(TurnIn(ts=float(t), negative=neg, intent=intent, channel="web",
                                text=texts[int(rng.integers(len(texts)))]))  # fmt: skip
    turns.sort(key=lambda x: x.ts)
    return turns


def mix(total_per_hour: float) -> dict[str, float]:
    """Per-intent volumes of a total."""
    return {i: total_per_hour * w for i, w in TOPICS.items()}


def run_monitor(turns: list[TurnIn], end: float) -> list[Any]:
    """All notifications of a stream with the default configuration."""
    m = Monitor(DetectorConfig(), RuleConfig())
    notes = [n for t in turns for n in m.add(t)]
    return notes + m.advance(end)


def bench_quiet(pool: Pool, rate: float, days: int, seed: int) -> dict[str, Any]:
    """False alerts in a week without incidents."""
    rng = np.random.default_rng(seed)
    turns = stream(rng, pool, 0, days * 24, mix(rate), {})
    notes = run_monitor(turns, days * 24 * HOUR)
    firing = [n for n in notes if n.kind == "firing"]
    return {"days": days, "messages_per_hour": rate, "messages": len(turns), "false_alerts": len(firing),
            "false_alert_times_h": [round(n.at / HOUR, 2) for n in firing]}  # fmt: skip


def bench_spike(pool: Pool, topic_rate: float, trials: int, seed: int) -> dict[str, Any]:
    """Detection delay of a +50 % relative rise in one topic carrying ``topic_rate`` messages/hour."""
    rng = np.random.default_rng(seed)
    volumes = {i: topic_rate * w / TOPICS[SPIKE_INTENT] for i, w in TOPICS.items()}  # the spiked topic = topic_rate
    delays, misses, notices, false_before = [], 0, [], 0
    for _ in range(trials):
        onset = 48 * HOUR + float(rng.uniform(0, 24 * HOUR))
        before = stream(rng, pool, 0, onset / HOUR, volumes, {})
        during = stream(rng, pool, onset, 3, volumes, {SPIKE_INTENT: 1.5 * pool.rate})
        after = stream(rng, pool, onset + 3 * HOUR, 6, volumes, {})
        notes = run_monitor(before + during + after, onset + 9 * HOUR)
        false_before += sum(1 for n in notes if n.kind == "firing" and n.at < onset)
        spike_notes = [n for n in notes if n.at >= onset]
        fired = [n for n in spike_notes if n.kind == "firing" and n.at <= onset + 3 * HOUR]
        if fired:
            delays.append((fired[0].at - onset) / 60)
            incident = fired[0].incident_id
            notices.append(sum(1 for n in spike_notes if n.incident_id == incident and n.kind == "firing"))
        else:
            misses += 1
    return {
        "topic_messages_per_hour": topic_rate, "trials": trials, "detected": len(delays), "missed": misses,
        "delay_min_median": round(float(np.median(delays)), 1) if delays else None,
        "delay_min_p90": round(percentile(delays, 90), 1) if delays else None,
        "within_10_min": sum(d <= 10 for d in delays), "firing_notices_per_incident": sorted(set(notices)),
        "false_alerts_before_spike": false_before,
    }  # fmt: skip


def bench_throughput(pool: Pool, n: int, labels: str, seed: int) -> dict[str, Any]:
    """Messages/minute through scoring (NLU, when ``labels`` is nlu) and detection."""
    rng = np.random.default_rng(seed)
    turns = stream(rng, pool, 0, n / 1000, mix(1000 * 1.0), {})[:n]
    texts = [t.text for t in turns]
    started = time.perf_counter()
    if labels == "nlu":
        score_with_nlu(texts)
    scored = time.perf_counter()
    run_monitor(turns, turns[-1].ts + HOUR)
    done = time.perf_counter()
    return {"messages": len(turns), "scoring_s": round(scored - started, 2), "detection_s": round(done - scored, 2),
            "messages_per_minute": round(len(turns) / (done - started) * 60),
            "detection_only_per_minute": round(len(turns) / (done - scored) * 60)}  # fmt: skip


def main() -> None:
    """Run the chosen sections, print tables, write benchmarks/results/monitoring.json."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.monitoring")
    p.add_argument("--sections", default="quiet,spikes,throughput")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--labels", choices=["gold", "nlu"], default="nlu", help="negative = gold label or NLU prediction")
    p.add_argument("--rate", type=float, default=600, help="messages/hour in the quiet week")
    p.add_argument("--volumes", default="200,500,1000,2000", help="messages/hour of the spiked topic")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--throughput-messages", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    pool = load_pool(args.data, args.labels)
    log.info("%d texts, %.1f %% negative (%s labels)", len(pool.negative) + len(pool.other), 100 * pool.rate,
             args.labels)  # fmt: skip
    protocol = {"labels": args.labels, "negative_rate": round(pool.rate, 4), "detector": vars(DetectorConfig()),
                "rules": vars(RuleConfig())}  # fmt: skip
    results: dict[str, Any] = {"protocol": protocol}
    sections = args.sections.split(",")
    if "quiet" in sections:
        results["quiet"] = q = bench_quiet(pool, args.rate, 7, args.seed)
        print(table(["days", "messages/h", "messages", "false alerts"],
                    [[q["days"], q["messages_per_hour"], q["messages"], q["false_alerts"]]]))  # fmt: skip
    if "spikes" in sections:
        results["spikes"] = rows = [
            bench_spike(pool, float(v), args.trials, args.seed) for v in args.volumes.split(",")
        ]
        print(table(["topic msgs/h", "trials", "detected", "median delay min", "p90 delay min", "≤ 10 min",
                     "notices/incident", "false before"],
                    [[r["topic_messages_per_hour"], r["trials"], r["detected"], r["delay_min_median"],
                      r["delay_min_p90"], r["within_10_min"], r["firing_notices_per_incident"],
                      r["false_alerts_before_spike"]] for r in rows]))  # fmt: skip
    if "throughput" in sections:
        results["throughput"] = t = bench_throughput(pool, args.throughput_messages, args.labels, args.seed)
        print(table(["messages", "scoring s", "detection s", "messages/min", "detection only/min"],
                    [[t["messages"], t["scoring_s"], t["detection_s"], t["messages_per_minute"],
                      t["detection_only_per_minute"]]]))  # fmt: skip
    write_results("monitoring", results, merge=True)


if __name__ == "__main__":
    main()
