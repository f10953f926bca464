"""Out-of-scope threshold tuning."""

from pathlib import Path

import pytest
import torch

from nlu.errors import DataError
from nlu.oos import load_oos, scores_at, tune_threshold


def test_threshold_separates_confident_in_scope_from_oos() -> None:
    in_conf = torch.tensor([0.95, 0.9, 0.85, 0.8, 0.4])
    in_correct = torch.tensor([True, True, True, True, False])
    oos_conf = torch.tensor([0.3, 0.5, 0.2, 0.6])
    t = tune_threshold(in_conf, in_correct, oos_conf)
    assert 0.6 < t <= 0.8 + 1e-6
    assert scores_at(t, in_conf, in_correct, oos_conf) == pytest.approx({"in_scope_accuracy": 0.8, "oos_recall": 1.0})


def test_threshold_respects_the_in_scope_budget() -> None:
    in_conf = torch.tensor([0.9, 0.5, 0.5, 0.5])
    in_correct = torch.tensor([True, True, True, True])
    oos_conf = torch.tensor([0.55, 0.6, 0.7])
    assert tune_threshold(in_conf, in_correct, oos_conf) > 0.5  # unbounded: drop 3 of 4 to catch all OOS
    assert tune_threshold(in_conf, in_correct, oos_conf, max_in_scope_drop=0.02) <= 0.5


def test_no_oos_keeps_everything() -> None:
    t = tune_threshold(torch.tensor([0.5, 0.9]), torch.tensor([True, True]), torch.tensor([]))
    assert t == 0.0


def test_load_oos_split(tmp_path: Path) -> None:
    f = tmp_path / "oos.txt"
    f.write_text("# comment\na\nb\n\nc\nd\ne\n")
    assert load_oos(f) == (["a", "c", "e"], ["b", "d"])
    with pytest.raises(DataError):
        load_oos(tmp_path / "missing.txt")


def test_calibrate_tunes_the_threshold_on_the_model(tiny_model_dir: Path, tiny_data_dir: Path) -> None:
    from nlu.data import load_intent_csv
    from nlu.model import load
    from nlu.train import calibrate

    model, tokenizer, meta = load(tiny_model_dir)
    dev = load_intent_csv(tiny_data_dir / "intents.csv")
    calibrate(model, tokenizer, meta, dev, torch.device("cpu"), Path("nlu/data/out_of_scope.txt"))
    assert 0.0 <= meta.threshold <= 1.0
    assert {"oos_recall_heldout", "dev_in_scope_accuracy_at_threshold"} <= set(meta.metrics)


def test_shipped_oos_file() -> None:
    tune, test = load_oos(Path("nlu/data/out_of_scope.txt"))
    assert len(tune) >= 50 and len(test) >= 50 and not set(tune) & set(test)


def test_threshold_meets_an_oos_target_within_the_budget() -> None:
    in_conf = torch.tensor([0.95, 0.9, 0.85, 0.7, 0.6])
    in_correct = torch.tensor([True, True, True, True, True])
    oos_conf = torch.tensor([0.3, 0.5, 0.65, 0.2])
    assert tune_threshold(in_conf, in_correct, oos_conf, max_in_scope_drop=0.1) == pytest.approx(0.6)
    t = tune_threshold(in_conf, in_correct, oos_conf, max_in_scope_drop=0.2, max_oos_accept=0.0)
    assert t == pytest.approx(0.7)  # every OOS message below, one in-scope message given up
    # a target the budget cannot pay for falls back to the best sum
    t = tune_threshold(in_conf, in_correct, oos_conf, max_in_scope_drop=0.0, max_oos_accept=0.0)
    assert t == pytest.approx(0.6)
