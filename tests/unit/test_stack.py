"""The launcher's pieces that need no running services: child environment, terminal chat."""

from pathlib import Path
from typing import Any

import httpx
import pytest

from core import stack
from core.settings import Settings


def test_child_env_carries_settings_and_offline_flags(tmp_path: Path) -> None:
    env = stack.child_env(Settings(var_dir=tmp_path, nlu_port=7777), {"SANIC_HOST": "127.0.0.1"})
    assert env["NLU_PORT"] == "7777" and env["VAR_DIR"] == str(tmp_path)
    assert env["HF_HUB_OFFLINE"] == "1" and env["RASA_TELEMETRY_ENABLED"] == "false"
    assert env["DATABASE_URL"].startswith("sqlite:///") and env["SANIC_HOST"] == "127.0.0.1"
    assert env["FAQ_EMBEDDER"] == "" and "None" not in env.values()  # unset settings stay unset


def test_chat_sends_turns_and_prints_replies(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[dict[str, Any]] = []

    def fake_post(url: str, json: dict[str, Any], timeout: float) -> httpx.Response:
        sent.append(json)
        if json["message"] == "boom":
            raise httpx.ConnectError("refused")
        body = [{"text": f"echo {json['message']}", "buttons": [{"title": "Yes", "payload": "/affirm"}]},
                {"custom": {"type": "product_card"}}]  # fmt: skip
        return httpx.Response(200, json=body, request=httpx.Request("POST", url))

    monkeypatch.setattr(httpx, "post", fake_post)
    lines = iter(["hello", "   ", "1", "boom", "/stop", "never read"])
    stack.chat(Settings(rasa_port=5999), read=lambda _prompt: next(lines), customer="cust0007")
    out = capsys.readouterr().out
    assert [m["message"] for m in sent] == ["hello", "/affirm", "boom"]  # "1" pressed the first button
    assert len({m["sender"] for m in sent}) == 1 and sent[0]["metadata"] == {"customer_id": "cust0007"}
    assert "bot> echo hello [1: Yes]" in out and "bot unreachable: ConnectError" in out
    assert out.count("bot>") == 2  # the product-card payload is not printed


def test_missing_rasa_venv_is_explained(tmp_path: Path) -> None:
    with pytest.raises(stack.SetupError, match="make setup"):
        stack.rasa_python(Settings(rasa_venv=tmp_path / "nope"))
