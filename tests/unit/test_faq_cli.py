"""`python -m nlu.faq`: import + tune, a malformed file changes nothing, search output."""

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, func, select

from core.db import get_engine
from core.models import FaqEntry
from nlu.faq import __main__ as cli
from nlu.faq.policy import Thresholds
from nlu.faq.service import thresholds_path


@pytest.fixture()
def fast_embedder(monkeypatch: pytest.MonkeyPatch, minilm_embedder: Any) -> None:
    monkeypatch.setattr(cli, "load_embedder", lambda _path, **_: minilm_embedder)


def _count() -> int:
    with Session(get_engine()) as s:
        return s.exec(select(func.count()).select_from(FaqEntry)).one()


def test_import_tunes_then_bad_file_keeps_everything(
    app_settings: Any,
    fast_embedder: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert cli.main(["import", "bot/kb/faq.yml"]) == 0
    n = _count()
    th = Thresholds.load(thresholds_path(app_settings.var_dir))
    assert n >= 30 and th.tuned_on.endswith("out-of-scope messages") and 0 < th.suggest <= th.answer < 1
    bad = tmp_path / "bad.yml"
    bad.write_text(
        Path("bot/kb/faq.yml").read_text().replace("  - id: gift-wrapping\n", "  - id: gift-wrapping\n    oops: 1\n")
    )
    assert cli.main(["import", str(bad)]) == 2
    line = bad.read_text().splitlines().index("  - id: gift-wrapping") + 1
    assert f"bad.yml:{line}: unknown key(s) oops" in caplog.text
    assert _count() == n
    assert cli.main(["search", "can I pay with paypal"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["id"] == "payment-methods" and out[0]["decision"] in {"answer", "suggest"}


def test_search_on_an_empty_kb_explains(
    app_settings: Any, fast_embedder: None, caplog: pytest.LogCaptureFixture
) -> None:
    assert cli.main(["search", "hello"]) == 2
    assert "knowledge base is empty" in caplog.text
