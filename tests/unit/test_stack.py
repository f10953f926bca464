"""The launcher's pieces that need no running services: child environment, terminal chat."""

from pathlib import Path

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


def test_chat_goes_through_the_gateway_and_numbers_buttons(
    app_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from fastapi.testclient import TestClient

    from bot.channels.app import create_app
    from bot.channels.conversations import ChatService
    from bot.channels.rasa_client import RasaClient
    from core.db import get_engine
    from tests.unit.rasa_fake import FakeRasa

    fake = FakeRasa(get_engine())
    service = ChatService(engine=get_engine(), rasa=RasaClient("http://rasa", transport=fake.transport()))
    client = TestClient(create_app(app_settings, service))
    lines = iter(["hello", "   ", "agent please", "1", "/stop", "never read"])
    stack.chat(app_settings, read=lambda _prompt: next(lines), customer="cust0007", client=client, follow=False)
    out = capsys.readouterr().out
    assert [(m[1], m[2]["customer_id"]) for m in fake.received] == [("hello", "cust0007"), ("agent please", "cust0007")]
    assert "bot> bot heard: hello" in out and "[1: Cancel]" in out
    assert "taken you out of the queue" in out  # "1" pressed the Cancel button (handled by the gateway)


def test_chat_explains_an_unreachable_gateway(capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = httpx.Client(base_url="http://gateway", transport=httpx.MockTransport(refuse))
    stack.chat(Settings(), read=lambda _prompt: "/stop", client=client, follow=False)
    assert "gateway unreachable: ConnectError" in capsys.readouterr().out


def test_missing_rasa_venv_is_explained(tmp_path: Path) -> None:
    with pytest.raises(stack.SetupError, match="make setup"):
        stack.rasa_python(Settings(rasa_venv=tmp_path / "nope"))


def _fake_model(model: Path, stamp: dict | None) -> None:
    import json

    model.mkdir(parents=True)
    (model / "nlu_meta.json").write_text("{}")
    if stamp is not None:
        (model / "inputs.json").write_text(json.dumps(stamp))


def test_nlu_model_is_retrained_when_its_inputs_change(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from nlu.fingerprint import inputs_hash

    current = inputs_hash()
    settings = Settings(var_dir=tmp_path / "var", nlu_model_dir=tmp_path / "var" / "models" / "nlu")
    assert stack.nlu_model_state(settings)[0]  # none yet
    _fake_model(settings.nlu_model_dir, {"inputs": current, "options": {}})
    assert stack.nlu_model_state(settings) == (False, "")
    (settings.nlu_model_dir / "inputs.json").write_text('{"inputs": "0000", "options": {}}')
    needed, why = stack.nlu_model_state(settings)
    assert needed and "inputs changed" in why
    (settings.nlu_model_dir / "inputs.json").unlink()  # trained by the launcher before stamps existed
    assert stack.nlu_model_state(settings)[0]
    # the user's models: trained with other options, or unstamped outside var/, are kept with a warning
    custom = Settings(var_dir=tmp_path / "var", nlu_model_dir=tmp_path / "mine")
    _fake_model(custom.nlu_model_dir, {"inputs": "0000", "options": {"epochs": 1}})
    assert stack.nlu_model_state(custom) == (False, "")
    assert "custom options ['epochs']" in caplog.text
    (custom.nlu_model_dir / "inputs.json").unlink()
    assert stack.nlu_model_state(custom) == (False, "")
    assert "has no input stamp" in caplog.text


def test_inputs_hash_sees_every_training_input(tmp_path: Path) -> None:
    from nlu import fingerprint

    for rel in ("nlu/config.yml", "bot/data/nlu.yml", "bot/kb/faq.yml", "nlu/data/x.csv", "nlu/train.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("a")
    before = fingerprint.inputs_hash(tmp_path)
    for rel in ("bot/data/nlu.yml", "nlu/data/x.csv", "nlu/train.py"):
        (tmp_path / rel).write_text("b")
        assert fingerprint.inputs_hash(tmp_path) != before, rel
        before = fingerprint.inputs_hash(tmp_path)
    assert fingerprint.options({"epochs": 3, "lr": 1e-4}, {"epochs": 5, "lr": 1e-4}) == {"epochs": 3}
    model = tmp_path / "m"
    model.mkdir()
    assert fingerprint.read_stamp(model) is None
    fingerprint.write_stamp(model, before, {"epochs": 3})
    assert fingerprint.read_stamp(model) == {"inputs": before, "options": {"epochs": 3}}
    (model / fingerprint.STAMP_FILE).write_text("not json")
    assert fingerprint.read_stamp(model) is None
