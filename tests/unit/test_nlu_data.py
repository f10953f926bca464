"""Training-data loaders and their errors."""

import re
from pathlib import Path

import pytest

from nlu.data import (
    Entity,
    Example,
    augment_ids,
    cap_per_label,
    load_intent_csv,
    load_rasa_yaml,
    load_sentiment_csv,
    oversample,
    stratified_split,
    strip_annotations,
)
from nlu.errors import DataError


def test_strip_annotations() -> None:
    text, ents = strip_annotations("send [INV-1](invoice_id) to [a@b.co](email) now")
    assert text == "send INV-1 to a@b.co now"
    assert ents == (Entity("invoice_id", 5, 10), Entity("email", 14, 20))


def test_load_rasa_yaml(tiny_data_dir: Path) -> None:
    ex = load_rasa_yaml(tiny_data_dir / "nlu.yml")
    assert ex[0] == Example("it is 100234", "inform", entities=(Entity("order_id", 6, 12),), annotated=True)


def test_bot_nlu_file_parses() -> None:
    ex = load_rasa_yaml(Path("bot/data/nlu.yml"))
    assert {"greet", "goodbye", "inform", "bot_challenge"} <= {e.intent for e in ex}


def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,intent\nhello,greet\n,greet\n")
    with pytest.raises(DataError, match=r"bad.csv:3"):
        load_intent_csv(bad)
    bad.write_text("text,label\nfine,meh\n")
    with pytest.raises(DataError, match=r"bad.csv:2"):
        load_sentiment_csv(bad)
    bad.write_text("utterance,intent\nhello,greet\n")
    with pytest.raises(DataError, match="missing column"):
        load_intent_csv(bad)


def test_invalid_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "nlu.yml"
    bad.write_text("nlu:\n  - intent: greet\n    examples: [unclosed\n")
    with pytest.raises(DataError, match="invalid YAML"):
        load_rasa_yaml(bad)


def test_augment_ids_inserts_numbers_after_order_words() -> None:
    data = [
        Example("where is my order", "track_order"),
        Example("hello", "greet"),
        Example("my invoice", "get_invoice"),
    ]
    out = augment_ids(data, 1.0, seed=3)
    assert len(out) == 5 and out[:3] == data
    assert re.search(r"order( #| number | no\. | )\d{5,7}$", out[3].text) and out[3].intent == "track_order"
    assert re.search(r"invoice.*INV-\d+$", out[4].text)
    assert augment_ids([Example("order 12345 is late", "complaint")], 1.0, seed=3) == [
        Example("order 12345 is late", "complaint")
    ]


def test_cap_split_oversample() -> None:
    data = [Example(f"a{i}", "a") for i in range(50)] + [Example(f"b{i}", "b") for i in range(5)]
    capped = cap_per_label(data, 10, seed=1)
    assert sum(e.intent == "a" for e in capped) == 10 and sum(e.intent == "b" for e in capped) == 5
    train, dev = stratified_split(capped, 0.2, seed=1)
    assert {e.intent for e in dev} == {"a", "b"} and not set(train) & set(dev)
    assert sum(e.intent == "b" for e in oversample(train, 8, seed=1)) == 8


def test_length_grouped_batches_cover_every_example_once_with_less_padding() -> None:
    import random

    from nlu.data import Example, length_grouped_batches

    rng = random.Random(1)
    examples = [Example(text="w " * rng.randint(1, 40), intent=f"i{n % 3}") for n in range(500)]
    batches = length_grouped_batches(examples, 16, random.Random(0), pool=10)
    flat = [e for b in batches for e in b]
    assert sorted(map(id, flat)) == sorted(map(id, examples)) and all(len(b) <= 16 for b in batches)
    spread = sum(max(len(e.text) for e in b) - min(len(e.text) for e in b) for b in batches) / len(batches)
    assert spread < 20  # random batches of 16 span most of the 2-80 character range
