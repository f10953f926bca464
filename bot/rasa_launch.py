"""Start Rasa (runs in the Rasa venv, Python 3.10): ``python bot/rasa_launch.py <rasa args>``.

It applies seven fixes before handing over to Rasa's own CLI, and adds the gateway's turn call.

``POST /webhooks/rest/turn`` answers one customer message in one request: the bot's replies,
the NLU's parse of the message (Rasa parses it once, with our NLU service) and ``held``. With
``hold_if_negative`` a message the NLU calls negative with at least that confidence pauses the
conversation before the bot answers; the gateway then opens the handoff.

Rasa's REST channel answers anyone, with any ``metadata`` (the customer id the actions trust),
and its HTTP API is open unless ``--auth-token`` is given on the command line (where every
local user can read it). With ``RASA_TOKEN`` in the environment the launcher passes it as the
API's auth token itself, and its REST channel wants ``Authorization: Bearer <RASA_TOKEN>``.

Rasa logs some exceptions with their frames' local variables, the NLU token among them: the
launcher masks the secrets of its environment in everything the process writes.

Rasa's REST channel answers 200 with whatever was collected when a turn fails (a lock store or
tracker store outage gives an empty reply, and the customer sees silence) and logs the
message's text. The launcher's REST channel answers 500 instead (the gateway then keeps the
message and asks the customer to retry) and logs only the error's type.

When the action server cannot be reached (or fails), Rasa 3.6 logs the error and carries on
with no reply at all: the customer sees silence. The launcher makes such a failure say the
domain's ``utter_action_unavailable`` instead (a form's validation rejection still works as
before).

The SQL tracker store's PostgreSQL engine gets ``pool_pre_ping``: without it, the first
conversations after a database restart fail on the dead pooled connections (tested in
tests/integration/test_scale_out.py).

Rasa 3.6 re-checks the action-server response schema from scratch on every custom
action (``jsonschema.validate`` re-validates the schema itself each call, about
50 ms on 2 cores). We compile the validator once and reuse it; the errors raised
are the same (``best_match`` of the same validator's errors). Set
``RASA_SCHEMA_CACHE=0`` to measure without it.
A conversation's cost grows with its current Rasa session: the SQL tracker store reads and
replays every event since the session started on each turn, and the policies featurize that whole
history. A Slack DM is one conversation for months, so the launcher starts a new session (slots
carried over, as after the domain's expiry time) once a session holds ``RASA_SESSION_TURNS``
customer messages, never inside a form or a handoff. The rules are single-turn (no rule looks
further back than the message it answers), so no prediction changes.

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


def ping_tracker_store_connections() -> None:
    """Make Rasa's SQL tracker store test each pooled connection before use (survives a database restart)."""
    from rasa.core import tracker_store

    original = tracker_store.create_engine_kwargs

    def create_engine_kwargs(url: Any) -> dict[str, Any]:
        return {**original(url), "pool_pre_ping": True}

    tracker_store.create_engine_kwargs = create_engine_kwargs


def session_full(events: Any, max_turns: int) -> bool:
    """Whether the current session of ``events`` (Rasa events, oldest first) holds ``max_turns`` customer
    messages (``0``: never full). Only the events since the last ``session_started`` count."""
    if max_turns <= 0:
        return False
    turns = 0
    for event in reversed(events):
        kind = getattr(event, "type_name", "")
        if kind == "session_started":
            return False
        turns += kind == "user"
        if turns >= max_turns:
            return True
    return False


def roll_long_sessions(max_turns: int) -> None:
    """Patch MessageProcessor._has_session_expired: a session that is full (:func:`session_full`), with no
    form active and no handoff pausing it, has expired too; the next message starts a new one."""
    from rasa.core.processor import MessageProcessor

    original = MessageProcessor._has_session_expired

    def _has_session_expired(self: MessageProcessor, tracker: Any) -> bool:
        if original(self, tracker):
            return True
        if tracker.active_loop_name or tracker.is_paused() or not self.domain.session_config.are_sessions_enabled():
            return False
        return session_full(tracker.events, max_turns)

    MessageProcessor._has_session_expired = _has_session_expired  # type: ignore[method-assign]


def bearer_matches(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (constant-time; empty token: always)."""
    import hmac

    if not token:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def very_negative(parse: dict[str, Any] | None, hold: float | None) -> bool:
    """Whether a parse says the customer is negative with at least ``hold`` confidence (``None``: never)."""
    sentiment = (parse or {}).get("sentiment")
    if hold is None or not isinstance(sentiment, dict) or sentiment.get("label") != "negative":
        return False
    score = sentiment.get("score")
    return isinstance(score, (int, float)) and float(score) >= float(hold)


async def parse_then_maybe_pause(agent: Any, message: Any, hold: float | None) -> bool:
    """Parse ``message`` once (the processor then uses this parse) and, when the customer is very
    negative, pause the conversation before the bot answers: the message is recorded, not answered,
    and the gateway opens a handoff. Returns whether it paused."""
    from rasa.shared.core.events import ConversationPaused

    processor = agent.processor
    message.parse_data = await processor.parse_message(message)
    if not very_negative(message.parse_data, hold):
        return False
    async with agent.lock_store.lock(message.sender_id):
        tracker = await processor.fetch_tracker_and_update_session(
            message.sender_id, message.output_channel, message.metadata
        )
        tracker.update(ConversationPaused())
        await processor.save_tracker(tracker)
    return True


def strict_rest_channel() -> None:
    """Register a REST channel whose failed turns answer 500 (same URL, request and reply format).

    It also answers ``POST /webhooks/rest/turn`` (the gateway's one call per customer message):
    ``{"sender", "message", "metadata", "hold_if_negative"}`` → ``{"messages", "parse", "held"}``.
    """
    import logging

    from rasa.core import channels
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
    from rasa.core.channels.rest import RestInput
    from sanic import Blueprint, response

    log = logging.getLogger("rasa_launch.rest")
    token = os.environ.get("RASA_TOKEN", "")

    class StrictRestInput(RestInput):
        """``rest`` channel: like Rasa's (no streaming), but a turn that raised is a 500, not an empty 200."""

        def blueprint(self, on_new_message: Any) -> Blueprint:
            bp = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

            @bp.route("/", methods=["GET"])
            async def health(request: Any) -> Any:
                return response.json({"status": "ok"})

            @bp.route("/webhook", methods=["POST"])
            async def receive(request: Any) -> Any:
                if not bearer_matches(request.headers.get("authorization"), token):
                    return response.json({"error": "missing or wrong Rasa token"}, status=401)
                sender = await self._extract_sender(request)
                collector = CollectingOutputChannel()
                message = UserMessage(self._extract_message(request), collector, sender,
                                      input_channel=self._extract_input_channel(request),
                                      metadata=self.get_metadata(request))  # fmt: skip
                try:
                    await on_new_message(message)
                except Exception as exc:  # the turn failed: say so, so the caller can keep the message and retry
                    log.error("turn of %s failed: %s", sender, type(exc).__name__)
                    return response.json({"error": type(exc).__name__}, status=500)
                return response.json(collector.messages)

            @bp.route("/turn", methods=["POST"])
            async def turn(request: Any) -> Any:
                """One customer turn for the gateway: the replies, the parse and whether the bot held back."""
                if not bearer_matches(request.headers.get("authorization"), token):
                    return response.json({"error": "missing or wrong Rasa token"}, status=401)
                body = request.json if isinstance(request.json, dict) else {}
                sender, text, hold = body.get("sender"), body.get("message"), body.get("hold_if_negative")
                metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
                if not isinstance(sender, str) or not sender or not isinstance(text, str):
                    return response.json({"error": "sender and message (strings) are required"}, status=400)
                if hold is not None and not isinstance(hold, (int, float)):
                    return response.json({"error": "hold_if_negative must be a number or null"}, status=400)
                collector = CollectingOutputChannel()
                message = UserMessage(text, collector, sender, input_channel="rest", metadata=metadata)
                agent = request.app.ctx.agent
                try:
                    held = await parse_then_maybe_pause(agent, message, hold)
                    await on_new_message(message)
                except Exception as exc:  # as above: the caller keeps the message and asks to retry
                    log.error("turn of %s failed: %s", sender, type(exc).__name__)
                    return response.json({"error": type(exc).__name__}, status=500)
                return response.json({"messages": collector.messages, "parse": message.parse_data, "held": held})

            return bp

    channels.BUILTIN_CHANNELS["rest"] = StrictRestInput


APOLOGY_RESPONSE = "utter_action_unavailable"


def apologise_when_the_action_server_fails() -> None:
    """Patch RemoteAction.run: a failed call answers with ``utter_action_unavailable`` instead of silence."""
    from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
    from rasa.shared.core.events import BotUttered
    from rasa.shared.exceptions import RasaException

    original = RemoteAction.run

    async def run(self: RemoteAction, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> list[Any]:
        try:
            return await original(self, output_channel, nlg, tracker, domain)
        except ActionExecutionRejection:
            raise
        except RasaException:
            variants = domain.responses.get(APOLOGY_RESPONSE) or [{"text": "Sorry, something went wrong."}]
            return [BotUttered(text=variants[0].get("text"), metadata={"failed_action": self.name()})]

    RemoteAction.run = run  # type: ignore[method-assign]


class _SecretMaskingStream:
    """Writes to ``stream`` with the given secrets replaced by ``***`` (Rasa logs exceptions with their
    frames' local variables, and one of them holds the NLU token)."""

    def __init__(self, stream: Any, secrets: list[str]) -> None:
        self._stream, self._secrets = stream, secrets

    def write(self, text: str) -> int:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return int(self._stream.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def mask_secrets_in_output() -> None:
    """Everything Rasa prints or logs goes through a stream that masks the secrets of its environment."""
    names = ("NLU_TOKEN", "RASA_TOKEN", "ACTION_TOKEN", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "RABBITMQ_PASSWORD",
             "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "WEBCHAT_IDENTITY_SECRET", "METRICS_TOKEN")  # fmt: skip
    secrets = sorted({v for n in names if len(v := os.environ.get(n, "")) >= 6}, key=len, reverse=True)
    if secrets:
        sys.stdout = _SecretMaskingStream(sys.stdout, secrets)  # type: ignore[assignment]
        sys.stderr = _SecretMaskingStream(sys.stderr, secrets)  # type: ignore[assignment]


def main() -> None:
    """Patch, then run ``rasa`` with this process's arguments."""
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    # idle connections outlive the gateway's client's (2 s): a request never goes out on one being closed
    os.environ.setdefault("SANIC_KEEP_ALIVE_TIMEOUT", "75")
    mask_secrets_in_output()
    ping_tracker_store_connections()
    strict_rest_channel()
    apologise_when_the_action_server_fails()
    roll_long_sessions(int(os.environ.get("RASA_SESSION_TURNS", "20") or 0))
    if os.environ.get("RASA_SCHEMA_CACHE", "1") != "0":
        cache_action_schema_validator()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *sys.argv[1:]]
    token = os.environ.get("RASA_TOKEN", "")
    if token and len(sys.argv) > 1 and sys.argv[1] == "run" and "--auth-token" not in sys.argv:
        sys.argv += ["--auth-token", token]  # given here, so it never shows in the process list
    rasa_main()


if __name__ == "__main__":
    main()
