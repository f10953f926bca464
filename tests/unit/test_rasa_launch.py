"""The pure pieces of the Rasa launcher (it runs in Rasa's venv; these need no Rasa)."""

from bot.rasa_launch import bearer_matches, session_full, very_negative


def test_bearer_token_check() -> None:
    assert bearer_matches("Bearer s3cret", "s3cret") and bearer_matches("bearer  s3cret ", "s3cret")
    assert not bearer_matches("Bearer wrong", "s3cret") and not bearer_matches(None, "s3cret")
    assert bearer_matches(None, "")  # no token configured: open (local development)


def test_hold_only_for_confidently_negative_parses() -> None:
    negative = {"sentiment": {"label": "negative", "score": 0.93}}
    assert very_negative(negative, 0.9) and not very_negative(negative, 0.95)
    assert not very_negative(negative, None)  # no hold asked (a person has the conversation)
    assert not very_negative({"sentiment": {"label": "neutral", "score": 0.99}}, 0.5)
    for odd in (None, {}, {"sentiment": "negative"}, {"sentiment": {"label": "negative", "score": "high"}}):
        assert not very_negative(odd, 0.0)


class _Event:
    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


def _events(*kinds: str) -> list[_Event]:
    return [_Event(k) for k in kinds]


def test_a_session_is_full_after_max_turns_customer_messages_since_it_started() -> None:
    turn = ("user", "action", "bot", "action")
    old_session = _events("session_started", *turn * 5)
    new_session = _events("session_started", "action", *turn * 2)
    assert session_full(old_session, 5) and not session_full(old_session, 6)
    assert not session_full(old_session + new_session, 3)  # only the current session counts
    assert session_full(old_session + new_session, 2)
    assert not session_full(_events(*turn * 50), 0)  # 0: only the domain's expiry time ends a session
    assert session_full(_events(*turn * 3), 3)  # a tracker from before sessions: all of it counts
