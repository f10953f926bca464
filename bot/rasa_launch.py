"""Start Rasa (runs in the Rasa venv, Python 3.10): ``python bot/rasa_launch.py <rasa args>``.

It applies one measured fix before handing over to Rasa's own CLI: Rasa 3.6
re-checks the action-server response schema from scratch on every custom
action (``jsonschema.validate`` re-validates the schema itself each call, about
50 ms on 2 cores). We compile the validator once and reuse it; the errors raised
are the same (``best_match`` of the same validator's errors). Set
``RASA_SCHEMA_CACHE=0`` to measure without it.
This file imports nothing from the project: the Rasa venv has none of its dependencies.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def cache_action_schema_validator() -> None:
    """Patch RemoteAction._validate_action_result with a compiled, cached validator."""
    from jsonschema import ValidationError, validators
    from jsonschema.exceptions import best_match
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    schema = RemoteAction.action_response_format_spec()
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema)

    def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        error = best_match(validator.iter_errors(result))
        if error is None:
            return True
        assert isinstance(error, ValidationError)
        error.message += (
            ". Failed to validate Action server response from API, make sure your response from the "
            "Action endpoint is valid. For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error

    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]


def main() -> None:
    """Patch, then run ``rasa`` with this process's arguments."""
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    if os.environ.get("RASA_SCHEMA_CACHE", "1") != "0":
        cache_action_schema_validator()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *sys.argv[1:]]
    rasa_main()


if __name__ == "__main__":
    main()
