"""Start-up refuses missing, half-set and weak secrets, with a message naming them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.errors import ConfigError
from core.settings import Settings, require_secrets

STRONG = "x" * 16


def test_loopback_needs_no_secrets_but_refuses_half_a_slack_app() -> None:
    require_secrets(Settings(_env_file=None), "gateway")  # type: ignore[call-arg]
    require_secrets(Settings(_env_file=None), "nlu")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not"):
        require_secrets(Settings(_env_file=None, slack_bot_token="xoxb-1"), "gateway")  # type: ignore[call-arg]


def test_a_deployment_needs_each_services_secrets() -> None:
    exposed = {"_env_file": None, "host": "0.0.0.0"}
    with pytest.raises(ConfigError) as e:
        require_secrets(Settings(**exposed), "gateway")  # type: ignore[arg-type]
    assert "WEBCHAT_IDENTITY_SECRET is not set" in str(e.value) and "METRICS_TOKEN is not set" in str(e.value)
    with pytest.raises(ConfigError, match="NLU_TOKEN is not set"):
        require_secrets(Settings(**exposed), "nlu")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="METRICS_TOKEN is shorter than 16"):
        require_secrets(Settings(**exposed, webchat_identity_secret=STRONG, metrics_token="short"), "gateway")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="RASA_TOKEN is not set"):
        require_secrets(Settings(**exposed, webchat_identity_secret=STRONG, metrics_token=STRONG), "gateway")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ACTION_TOKEN is not set"):
        require_secrets(Settings(**exposed), "actions")  # type: ignore[arg-type]
    require_secrets(Settings(**exposed, webchat_identity_secret=STRONG, metrics_token=STRONG, rasa_token=STRONG),  # type: ignore[arg-type]
                    "gateway")  # fmt: skip
    require_secrets(Settings(**exposed, nlu_token=STRONG), "nlu")  # type: ignore[arg-type]
    require_secrets(Settings(**exposed, action_token=STRONG), "actions")  # type: ignore[arg-type]


@pytest.mark.parametrize(("module", "args", "missing"), [
    ("bot.channels", ["serve"], "WEBCHAT_IDENTITY_SECRET"),
    ("nlu.server", [], "NLU_TOKEN"),
    ("bot.action_server", [], "ACTION_TOKEN"),
])  # fmt: skip
def test_services_stop_at_start_up_with_the_message(module: str, args: list[str], missing: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"HOST": "0.0.0.0", "VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": "."}
    done = subprocess.run([sys.executable, "-m", module, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"{missing} is not set" in done.stderr and "Traceback" not in done.stderr
