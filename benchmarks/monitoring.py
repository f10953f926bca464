"""Sentiment-monitor benchmark: ``python -m benchmarks.monitoring [--sections quiet,spikes,tune,throughput]``.

Replay protocol. Messages are the TweetEval sentiment test split (../shared/data/sentiment,
12,284 texts, 32 % negative), arriving as a Poisson stream over five intent topics. A message's
"negative" is its gold label (the default: detection is judged on the true rate), or the served
NLU model's prediction with ``--labels nlu`` (what production would count; it depends on how well
the shipped sentiment head reads tweets, a separate question).

- ``quiet``: a week with no incident at each ``--rates`` volume (messages/hour); every firing
  notification is a false alert.
- ``spikes``: for each volume (messages/hour in the affected topic), ``--trials`` runs of two
  days of normal traffic followed by a sustained +50 % relative rise of the negative rate in
  that topic (32 % → 48 %) for three hours. Reported: the detection delay (stream minutes from
  the spike's start to the incident's firing notification), misses (not within the three hours),
  notifications per incident, and false alerts before the spike.
- ``throughput``: messages/minute through NLU batch scoring with the served model (var/models/nlu,
  each ``--backends`` entry) plus detection (2 cores), and each backend's sentiment agreement
  with the first.
- ``tune``: the detector grid (``tune_grid``) on the same quiet weeks and spike trials, the
  false-alert / delay trade-off the defaults were chosen from.

Results: benchmarks/results/monitoring.json; docs/BENCHMARKS.md quotes them.
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

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


def score_with_nlu(texts: list[str], batch: int = 256, backend: str = "onnx") -> list[str]:
    """Sentiment labels from the served NLU model (var/models/nlu)."""
    from nlu.predict import load_predictor

    predictor = load_predictor(ROOT / "var" / "models" / "nlu", backend=backend)
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


@dataclass(frozen=True)
class Setup:
    """One configuration of detectors, rules and allowed lateness (the defaults unless tuning)."""

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    rules: RuleConfig = field(default_factory=RuleConfig)
    lateness: float = Monitor.lateness

    def label(self) -> str:
        """The tuned knobs, for a table row."""
        shifts = "/".join(f"{x:g}" for x in self.detector.shifts)
        return (f"h={self.detector.cusum_h:g} shifts={shifts} ewma={self.detector.ewma_sigmas:g}σ "
                f"for={self.rules.for_seconds:g}s")  # fmt: skip


@dataclass(frozen=True)
class Trial:
    """One spike trial's stream: normal traffic, a rise in one topic from ``onset`` for three hours, normal again."""

    turns: list[TurnIn]
    onset: float
    end: float


def run_monitor(turns: list[TurnIn], end: float, setup: Setup) -> list[tuple[float, Any]]:
    """All notifications of a stream, each with the stream time it is sent.

    A bin's notifications go out when the watermark passes the bin's end by the allowed lateness,
    so the sending time is the bin's end plus ``lateness``.
    """
    m = Monitor(setup.detector, setup.rules, lateness=setup.lateness)
    notes = [n for t in turns for n in m.add(t)] + m.advance(end)
    return [(n.at + setup.lateness, n) for n in notes]


def quiet_week(pool: Pool, rate: float, days: int, seed: int) -> list[TurnIn]:
    """``days`` of normal traffic at ``rate`` messages/hour."""
    return stream(np.random.default_rng(seed), pool, 0, days * 24, mix(rate), {})


def spike_trials(pool: Pool, topic_rate: float, trials: int, seed: int, before_hours: float = 48) -> list[Trial]:
    """Streams with a sustained +50 % relative rise in one topic carrying ``topic_rate`` messages/hour."""
    rng = np.random.default_rng(seed)
    volumes = {i: topic_rate * w / TOPICS[SPIKE_INTENT] for i, w in TOPICS.items()}  # the spiked topic = topic_rate
    out = []
    for _ in range(trials):
        onset = before_hours * HOUR + float(rng.uniform(0, 24 * HOUR))
        before = stream(rng, pool, 0, onset / HOUR, volumes, {})
        during = stream(rng, pool, onset, 3, volumes, {SPIKE_INTENT: 1.5 * pool.rate})
        after = stream(rng, pool, onset + 3 * HOUR, 3, volumes, {})
        out.append(Trial(before + during + after, onset, onset + 6 * HOUR))
    return out


def score_quiet(turns: list[TurnIn], days: int, rate: float, setup: Setup) -> dict[str, Any]:
    """False alerts of a quiet stream: every firing notification is one."""
    firing = [at for at, n in run_monitor(turns, days * 24 * HOUR, setup) if n.kind == "firing"]
    return {"days": days, "messages_per_hour": rate, "messages": len(turns), "false_alerts": len(firing),
            "false_alert_times_h": [round(at / HOUR, 2) for at in firing]}  # fmt: skip


def score_spikes(trials: list[Trial], topic_rate: float, setup: Setup) -> dict[str, Any]:
    """Detection delay (sending time of the first firing notice after the onset), misses, notices, false alerts."""
    delays: list[float] = []
    misses, notices, false_before = 0, [], 0
    for trial in trials:
        notes = run_monitor(trial.turns, trial.end, setup)
        false_before += sum(1 for at, n in notes if n.kind == "firing" and at < trial.onset)
        spike_notes = [(at, n) for at, n in notes if at >= trial.onset]
        fired = [(at, n) for at, n in spike_notes if n.kind == "firing" and at <= trial.onset + 3 * HOUR]
        if fired:
            delays.append((fired[0][0] - trial.onset) / 60)
            incident = fired[0][1].incident_id
            notices.append(sum(1 for _, n in spike_notes if n.incident_id == incident and n.kind == "firing"))
        else:
            misses += 1
    return {
        "topic_messages_per_hour": topic_rate, "trials": len(trials), "detected": len(delays), "missed": misses,
        "delay_min_median": round(float(np.median(delays)), 1) if delays else None,
        "delay_min_p90": round(percentile(delays, 90), 1) if delays else None,
        "within_10_min": sum(d <= 10 for d in delays), "firing_notices_per_incident": sorted(set(notices)),
        "false_alerts_before_spike": false_before,
    }  # fmt: skip


def tune_grid() -> list[Setup]:
    """The configurations ``--sections tune`` compares: the CUSUM threshold, then one knob at a time."""
    d, r = DetectorConfig(), RuleConfig()
    return [
        *(Setup(replace(d, cusum_h=h), r) for h in (7.0, 8.0, 9.0, 10.0, 11.0)),
        *(Setup(d, replace(r, for_seconds=f)) for f in (0.0, 120.0)),
        Setup(replace(d, shifts=(0.5,)), r),
        Setup(replace(d, ewma_sigmas=6.0), r),
    ]


def bench_tune(pool: Pool, quiet_rates: list[float], volumes: list[float], trials: int, seed: int
               ) -> list[dict[str, Any]]:  # fmt: skip
    """Every grid configuration on the same quiet weeks and spike trials: the false-alert / delay trade-off."""
    quiets = {r: quiet_week(pool, r, 7, seed) for r in quiet_rates}
    spikes = {v: spike_trials(pool, v, trials, seed, before_hours=24) for v in volumes}
    rows = []
    for setup in tqdm(tune_grid(), desc="tune", unit="config"):
        row: dict[str, Any] = {
            "config": setup.label(),
            "cusum_h": setup.detector.cusum_h,
            "shifts": list(setup.detector.shifts),
            "ewma_sigmas": setup.detector.ewma_sigmas,
            "for_seconds": setup.rules.for_seconds,
        }
        row["false_alerts_per_week"] = {str(r): score_quiet(t, 7, r, setup)["false_alerts"] for r, t in quiets.items()}
        row["spikes"] = {str(v): score_spikes(t, v, setup) for v, t in spikes.items()}
        rows.append(row)
    return rows  # fmt: skip


def bench_throughput(pool: Pool, n: int, seed: int, backends: list[str]) -> list[dict[str, Any]]:
    """Messages/minute through scoring (the NLU batch path, per backend) and detection."""
    rng = np.random.default_rng(seed)
    turns = stream(rng, pool, 0, n / 1000, mix(1000 * 1.0), {})[:n]
    texts = [t.text for t in turns]
    rows, reference = [], None
    for backend in backends:
        started = time.perf_counter()
        predicted = score_with_nlu(texts, backend=backend)
        scored = time.perf_counter()
        run_monitor(turns, turns[-1].ts + HOUR, Setup())
        done = time.perf_counter()
        reference = reference or predicted
        agreement = sum(a == b for a, b in zip(predicted, reference, strict=True)) / len(predicted)
        rows.append({"backend": backend, "messages": len(turns), "scoring_s": round(scored - started, 2),
                     "detection_s": round(done - scored, 2),
                     "messages_per_minute": round(len(turns) / (done - started) * 60),
                     "detection_only_per_minute": round(len(turns) / (done - scored) * 60),
                     "sentiment_agreement_with_first": round(agreement, 4)})  # fmt: skip
    return rows


def main() -> None:
    """Run the chosen sections, print tables, write benchmarks/results/monitoring.json."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.monitoring")
    p.add_argument("--sections", default="quiet,spikes,tune,throughput")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--labels", choices=["gold", "nlu"], default="gold",
                   help="negative = the gold label (default) or the served NLU model's prediction")  # fmt: skip
    p.add_argument("--rates", default="600,3000", help="messages/hour of the quiet weeks")
    p.add_argument("--volumes", default="200,500,1000,2000", help="messages/hour of the spiked topic")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--throughput-messages", type=int, default=20_000)
    p.add_argument("--backends", default="onnx,onnx-int8", help="NLU backends timed by --sections throughput")
    p.add_argument("--tune-rates", default="600,3000", help="quiet-week volumes of --sections tune")
    p.add_argument("--tune-volumes", default="200,1000", help="spiked-topic volumes of --sections tune")
    p.add_argument("--tune-trials", type=int, default=5)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    pool = load_pool(args.data, args.labels)
    log.info("%d texts, %.1f %% negative (%s labels)", len(pool.negative) + len(pool.other), 100 * pool.rate,
             args.labels)  # fmt: skip
    protocol = {"labels": args.labels, "negative_rate": round(pool.rate, 4), "detector": vars(DetectorConfig()),
                "rules": vars(RuleConfig()), "lateness_s": Setup().lateness}  # fmt: skip
    results: dict[str, Any] = {"protocol": protocol}
    sections = args.sections.split(",")
    if "quiet" in sections:
        rates = [float(r) for r in args.rates.split(",")]
        results["quiet"] = qs = [score_quiet(quiet_week(pool, r, 7, args.seed), 7, r, Setup()) for r in rates]
        print(table(["days", "messages/h", "messages", "false alerts"],
                    [[q["days"], q["messages_per_hour"], q["messages"], q["false_alerts"]] for q in qs]))  # fmt: skip
    if "spikes" in sections:
        results["spikes"] = rows = [
            score_spikes(spike_trials(pool, float(v), args.trials, args.seed), float(v), Setup())
            for v in args.volumes.split(",")
        ]
        print(table(["topic msgs/h", "trials", "detected", "median delay min", "p90 delay min", "≤ 10 min",
                     "notices/incident", "false before"],
                    [[r["topic_messages_per_hour"], r["trials"], r["detected"], r["delay_min_median"],
                      r["delay_min_p90"], r["within_10_min"], r["firing_notices_per_incident"],
                      r["false_alerts_before_spike"]] for r in rows]))  # fmt: skip
    if "tune" in sections:
        rates = [float(r) for r in args.tune_rates.split(",")]
        volumes = [float(v) for v in args.tune_volumes.split(",")]
        results["tune"] = rows = bench_tune(pool, rates, volumes, args.tune_trials, args.seed)
        print(table(["config"] + [f"false/week @{r:g}/h" for r in rates]
                    + [f"median delay @{v:g}/h" for v in volumes] + [f"≤ 10 min @{v:g}/h" for v in volumes],
                    [[r["config"]] + list(r["false_alerts_per_week"].values())
                     + [r["spikes"][str(v)]["delay_min_median"] for v in volumes]
                     + [f'{r["spikes"][str(v)]["within_10_min"]}/{r["spikes"][str(v)]["trials"]}' for v in volumes]
                     for r in rows]))  # fmt: skip
    if "throughput" in sections:
        results["throughput"] = rows = bench_throughput(pool, args.throughput_messages, args.seed,
                                                        args.backends.split(","))  # fmt: skip
        print(table(["backend", "messages", "scoring s", "detection s", "messages/min", "detection only/min",
                     "agreement"],
                    [[t["backend"], t["messages"], t["scoring_s"], t["detection_s"], t["messages_per_minute"],
                      t["detection_only_per_minute"], t["sentiment_agreement_with_first"]] for t in rows]))  # fmt: skip
    write_results("monitoring", results, merge=True)


if __name__ == "__main__":
    main()
