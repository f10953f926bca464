"""BIO tags from character spans and back."""

import pytest
import torch
from transformers import AutoTokenizer

from nlu.data import Entity, Example
from nlu.encoding import bio_labels, decode_spans, encode, merge_entities, tag_names
from nlu.model import base_model_path


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return AutoTokenizer.from_pretrained(base_model_path())


def test_tag_names() -> None:
    assert tag_names(["city", "order_id"]) == ["O", "B-city", "I-city", "B-order_id", "I-order_id"]


def test_bio_labels_follow_word_pieces(tokenizer) -> None:  # type: ignore[no-untyped-def]
    tags = tag_names(["city"])
    text = "ship it to Rio de Janeiro please"
    ex = Example(text, "x", entities=(Entity("city", 11, 25),), annotated=True)
    unannotated = Example("ship it to Rio", "x")
    enc = encode(tokenizer, [ex.text, unannotated.text], 32, offsets=True)
    labels = bio_labels([ex, unannotated], enc["offset_mapping"], tags)
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    named = {tok: tags[lab] for tok, lab in zip(tokens, labels[0].tolist(), strict=True) if lab != -100}
    assert named["rio"] == "B-city" and named["de"] == "I-city" and named["janeiro"] == "I-city"
    assert named["ship"] == "O" and named["please"] == "O"
    assert labels[0, 0] == -100  # [CLS]
    assert (labels[1] == -100).all()  # nothing to learn from an unannotated example


def test_decode_round_trip(tokenizer) -> None:  # type: ignore[no-untyped-def]
    tags = tag_names(["city"])
    text = "ship it to Rio de Janeiro please"
    ex = Example(text, "x", entities=(Entity("city", 11, 25),), annotated=True)
    enc = encode(tokenizer, [text], 32, offsets=True)
    labels = bio_labels([ex], enc["offset_mapping"], tags)[0]
    probs = torch.nn.functional.one_hot(labels.clamp(min=0), len(tags)).float()
    spans = decode_spans(text, [tuple(o) for o in enc["offset_mapping"][0].tolist()], probs, tags)
    assert [(s["entity"], s["value"], s["start"], s["end"]) for s in spans] == [("city", "Rio de Janeiro", 11, 25)]
    assert spans[0]["confidence_entity"] == 1.0


def test_merge_prefers_exact_rules_and_keeps_other_learned_spans() -> None:
    learned = [{"entity": "invoice_id", "start": 5, "end": 11}, {"entity": "person_name", "start": 20, "end": 30}]
    rules = [{"entity": "email", "start": 20, "end": 34}, {"entity": "order_id", "start": 40, "end": 46}]
    merged = merge_entities(learned, rules)
    assert [(e["entity"], e["start"]) for e in merged] == [("invoice_id", 5), ("email", 20), ("order_id", 40)]
