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


def test_oos_ceiling_rejects_what_a_threshold_cannot() -> None:
    from nlu.oos import accepted, tune_fallback

    # in-scope answers spread their confidence (0.45-0.9) but give the OOS class little mass;
    # out-of-scope messages are confidently mislabelled yet carry 8-30 % OOS mass
    in_conf = torch.tensor([0.9, 0.8, 0.6, 0.5, 0.45])
    in_oos = torch.tensor([0.01, 0.02, 0.01, 0.03, 0.02])
    in_correct = torch.ones(5, dtype=torch.bool)
    oos_conf = torch.tensor([0.85, 0.7, 0.6])
    oos_oos = torch.tensor([0.1, 0.3, 0.08])
    # 0 of 3 through has a 95 % upper bound of 0.47: the target 0.5 asks for none through
    t, c = tune_fallback(in_conf, in_oos, in_correct, oos_conf, oos_oos, max_in_scope_drop=0.0, max_oos_accept=0.5)
    assert accepted(in_conf, in_oos, t, c).all()  # no real question given up
    assert not accepted(oos_conf, oos_oos, t, c).any()  # every out-of-scope message falls back
    assert c < 1.0 and t <= 0.45


def test_fallback_rule_prefers_accuracy_then_fewer_oos_through() -> None:
    from nlu.oos import accepted, tune_fallback

    in_conf = torch.tensor([0.9, 0.8, 0.3])
    in_oos = torch.tensor([0.0, 0.0, 0.6])
    in_correct = torch.tensor([True, True, False])  # the unsure one is wrong anyway: rejecting it is free
    oos_conf = torch.tensor([0.4, 0.2])
    oos_oos = torch.tensor([0.5, 0.7])
    t, c = tune_fallback(in_conf, in_oos, in_correct, oos_conf, oos_oos, max_in_scope_drop=0.0, max_oos_accept=0.6)
    assert not accepted(oos_conf, oos_oos, t, c).any()
    assert accepted(in_conf[:2], in_oos[:2], t, c).all()


def test_fallback_rule_without_oos_keeps_everything() -> None:
    from nlu.oos import tune_fallback

    t, c = tune_fallback(
        torch.tensor([0.5, 0.9]), torch.zeros(2), torch.tensor([True, True]), torch.tensor([]), torch.tensor([])
    )
    assert (t, c) == (0.0, 1.0)


def test_fallback_rule_warns_when_the_target_is_out_of_budget(caplog: pytest.LogCaptureFixture) -> None:
    from nlu.oos import tune_fallback

    in_conf, in_oos, ok = torch.tensor([0.9, 0.6]), torch.tensor([0.3, 0.4]), torch.tensor([True, True])
    t, c = tune_fallback(in_conf, in_oos, ok, torch.tensor([0.95]), torch.tensor([0.3]), 0.0, 0.0)
    assert (t, c) == (0.0, 1.0)  # nothing separates them: keep every real question
    assert "no fallback rule" in caplog.text


def test_the_oos_target_is_met_with_a_margin() -> None:
    from nlu.oos import upper_bound

    # 3 of 109 through is 2.75 %, but the share on new text may well be 6 %: not "at most 5 %"
    assert upper_bound(3, 109) > 0.05 and upper_bound(1, 109) < 0.05
    assert upper_bound(0, 0) == 0.0 and upper_bound(5, 5) == pytest.approx(1.0)
    assert upper_bound(10, 1000) < upper_bound(1, 100)  # the same share, seen on more messages: a tighter bound
