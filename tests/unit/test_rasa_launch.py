"""The pure pieces of the Rasa launcher (it runs in Rasa's venv; these need no Rasa)."""

from bot.rasa_launch import bearer_matches, very_negative


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
