"""The recommender grid: its command line, the summary's ranking by validation, and one tiny real run."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from benchmarks.recommender_grid import VARIANTS, main, parse_args, summarise


def _data(tmp_path: Path, users: int = 40) -> Path:
    """A SASRec-format file where each user walks a cycle of 12 items."""
    lines = [f"{u} {(u + i) % 12 + 1}" for u in range(1, users + 1) for i in range(6 + u % 4)]
    (tmp_path / "ml-1m").mkdir()
    (tmp_path / "ml-1m" / "sequences.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def _run(variant: str, seed: int, valid: float, test: float) -> dict:
    full = {"ndcg@10": test, "hr@10": 2 * test}
    return {"variant": variant, "seed": seed, "valid_ndcg@10": valid, "best_epoch": 3, "train_seconds": 10.0,
            "seconds_per_epoch": 2.0, "time_limited": False, "test": {"full": full, "sampled100": full}}  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--variants", "shipped,bert4rec"], "unknown variant(s) bert4rec"),
        (["--seeds", "1,two"], "expected a comma list of integers"),
        (["--jobs", "0"], "--jobs and --threads must be at least 1"),
    ],
)
def test_bad_options_are_refused_with_a_reason(tmp_path: Path, argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    with pytest.raises(SystemExit):
        parse_args([*argv, "--data", str(_data(tmp_path))])
    assert message in capsys.readouterr().err


def test_a_missing_data_set_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--data", str(tmp_path)])
    assert "ml-1m/sequences.txt not found" in capsys.readouterr().err


def test_variants_are_ranked_by_validation_not_test() -> None:
    rows = summarise([_run("a", 1, 0.20, 0.10), _run("a", 2, 0.22, 0.12), _run("b", 1, 0.19, 0.30)])
    assert [r["variant"] for r in rows] == ["a", "b"]  # b's better test figure does not move it up
    assert rows[0]["seeds"] == 2 and rows[0]["valid_ndcg@10"] == 0.21 and rows[0]["test_ndcg@10"] == 0.11
    assert rows[0]["test_ndcg@10_sd"] == pytest.approx(0.0141, abs=1e-4) and rows[1]["test_ndcg@10_sd"] is None


def test_every_variant_only_changes_known_config_keys() -> None:
    from recommender.fit import load_config

    known = set(load_config())
    assert all(set(changes) <= known for changes in VARIANTS.values())


def test_a_tiny_grid_runs_side_by_side_and_keeps_every_run(tmp_path: Path) -> None:
    out = tmp_path / "grid.json"
    main(["--data", str(_data(tmp_path)), "--variants", "shipped,gru", "--seeds", "1,2", "--jobs", "2",
          "--threads", "1", "--epochs", "2", "--out", str(out), "--section", "tiny"])  # fmt: skip
    section = json.loads(out.read_text())["results"]["tiny"]
    assert len(section["runs"]) == 4 and {r["variant"] for r in section["runs"]} == {"shipped", "gru"}
    assert all(r["device"] == "cpu" and 1 <= r["best_epoch"] <= 2 for r in section["runs"])
    assert [r["seeds"] for r in section["summary"]] == [2, 2] and "cores" in section["machine"]["machine"]


def test_the_gpu_session_script_parses_and_names_known_variants() -> None:
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_session.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    named = re.findall(r"--variants (\S+)", script.read_text())
    assert named and all(v in VARIANTS for names in named for v in names.split(","))
