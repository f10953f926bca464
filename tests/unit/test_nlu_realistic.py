"""Realistic evaluation: the labelled set, its scores, chat-style augmentation, served entities, first replies."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from benchmarks.first_reply import BotFacts, classify, summary
from nlu import evalset
from nlu.augment import augment, noisy
from nlu.data import Entity, Example, keep_entity_types, load_customer_csv
from nlu.entities import plausible
from nlu.errors import DataError
from nlu.evalset import Labelled
from nlu.scoring import score

ROOT = Path(__file__).resolve().parents[2]


def _line(**row: object) -> str:
    base: dict[str, object] = {"text": "where is 100234", "intent": "track_order", "faq": None, "entities": []}
    return json.dumps({**base, **row})


def test_parse_line_finds_entity_offsets_in_any_order() -> None:
    text = "order 100233, send it to j@x.de"
    item = evalset.parse_line(
        _line(text=text, entities=[{"entity": "email", "value": "j@x.de"}, {"entity": "order_id", "value": "100233"}]),
        "f:1",
    )
    assert [(e.entity, text[e.start : e.end]) for e in item.entities] == [("order_id", "100233"), ("email", "j@x.de")]
    assert item.kind == "intent"


@pytest.mark.parametrize(
    "row, message",
    [
        ({"entities": [{"entity": "order_id", "value": "999"}]}, "not in the text"),
        ({"intent": ""}, "needs an 'intent'"),
        ({"intent": "track_order", "faq": "gift-cards"}, "only for intent"),
        ({"sentiment": "angry"}, "sentiment must be"),
        ({"text": "  "}, "non-empty"),
    ],
)
def test_bad_lines_name_the_problem(row: dict[str, object], message: str) -> None:
    with pytest.raises(DataError, match=message):
        evalset.parse_line(_line(**row), "f:3")


def test_kinds_and_split_are_stratified_and_stable() -> None:
    items = [Labelled(f"t{i}", "greet") for i in range(10)] + [Labelled(f"o{i}", None) for i in range(4)]
    items += [Labelled("gift?", None, faq="gift-cards"), Labelled("gift card?", None, faq="gift-cards")]
    assert {i.kind for i in items} == {"intent", "oos", "faq"}
    dev, test = evalset.split(items)
    assert len(dev) == len(test) == 8 and sum(i.kind == "oos" for i in dev) == 2
    assert evalset.split(list(reversed(items))) == (dev, test)  # independent of the input order


def test_build_checks_labels_against_the_bot(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.jsonl").write_text(_line() + "\n" + _line(text="WHERE is 100234 ") + "\n" + _line(intent="nope") + "\n")
    with pytest.raises(DataError, match="unknown intent 'nope'"):
        evalset.build(raw, tmp_path / "out", intents={"track_order"}, faq_ids=set())
    order = [{"entity": "order_id", "value": "100234"}]
    (raw / "a.jsonl").write_text(_line(entities=order) + "\n" + _line(text="WHERE is 100234 ") + "\n")
    assert evalset.build(raw, tmp_path / "out", intents={"track_order"}, faq_ids=set()) == (0, 1)  # deduplicated
    assert evalset.load(tmp_path / "out" / evalset.TEST_FILE)[0].entities == (Entity("order_id", 9, 15),)


def test_the_shipped_splits_are_disjoint_and_large_enough() -> None:
    dev = evalset.load(ROOT / "nlu" / "data" / "eval" / evalset.DEV_FILE)
    test = evalset.load(ROOT / "nlu" / "data" / "eval" / evalset.TEST_FILE)
    assert len(dev) + len(test) >= 1000 and not {i.text.lower() for i in dev} & {i.text.lower() for i in test}
    assert {i.kind for i in test} == {"intent", "faq", "oos"}


def _parse(intent: str, entities: list[tuple[str, str]] = (), sentiment: str = "neutral") -> dict:  # type: ignore[assignment]
    return {
        "intent": {"name": intent},
        "entities": [{"entity": e, "value": v} for e, v in entities],
        "sentiment": {"label": sentiment},
    }


def test_score_counts_fallbacks_oos_and_entities() -> None:
    items = [
        Labelled("where is 100234", "track_order", entities=(Entity("order_id", 9, 15),), sentiment="neutral"),
        Labelled("refund now!!", "get_refund", sentiment="negative"),
        Labelled("tell me a joke", None, sentiment="neutral"),
        Labelled("gift cards?", None, faq="gift-cards", sentiment="positive"),
    ]
    parses = [
        _parse("track_order", [("order_id", "100234")]),
        _parse("nlu_fallback", [("max_price", "now"), ("product", "Camping | tent")], "negative"),  # catalog: unscored
        _parse("complaint", sentiment="negative"),
        _parse("nlu_fallback", sentiment="positive"),
    ]
    s = score(items, parses)
    assert s["intent_accuracy"] == 0.5 and s["fallback_share"] == 0.5
    assert s["oos_confident_wrong"] == 1.0 and s["faq_topic_fallback"] == 1.0
    assert s["spurious_entity_rate"] == 0.25 and s["entity_precision"] == 0.5 and s["entity_recall"] == 1.0
    assert s["neutral_called_negative"] == 0.5 and s["sentiment_macro_recall"] == pytest.approx(
        (0.5 + 1 + 1) / 3, abs=1e-4
    )


def test_noisy_copies_keep_entity_spans_right() -> None:
    rng = random.Random(0)
    ex = Example("Where is Order 100234 please?", "track_order", entities=(Entity("order_id", 15, 21),), annotated=True)
    for _ in range(200):
        copy = noisy(ex, rng)
        (span,) = copy.entities
        assert copy.text[span.start : span.end] == "100234" and copy.intent == "track_order"
    plain = [noisy(Example("I would like to return my jacket", "get_refund"), rng).text for _ in range(50)]
    assert len(set(plain)) > 10 and any(t.islower() for t in plain)
    assert len(augment([ex] * 10, 0.5, 1)) > 10


def test_customer_csv_and_entity_types(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text('text,intent,sentiment\n"where is [100234](order_id)",track_order,neutral\nhi,greet,\n')
    rows = load_customer_csv(f)
    assert rows[0].text == "where is 100234" and rows[0].annotated and rows[0].sentiment == "neutral"
    assert rows[1].sentiment is None and rows[1].source == "customer"
    named = Example("ship to Paris", "x", entities=(Entity("delivery_city", 8, 13),), annotated=True)
    assert keep_entity_types([named], {"order_id"})[0].entities == ()
    f.write_text("text,intent,sentiment\nhi,greet,furious\n")
    with pytest.raises(DataError, match="sentiment 'furious'"):
        load_customer_csv(f)


@pytest.mark.parametrize(
    "entity, value, confidence, served",
    [
        ("order_id", "100234", 0.9, True),
        ("order_id", "100234", 0.3, False),  # unsure
        ("order_id", "the", 0.99, False),  # not the shop's format
        ("invoice_id", "INV-20931", 0.9, True),
        ("max_price", "very", 0.99, False),
        ("person_name", "rs", 0.99, False),  # a type the bot has no slot for
        ("delivery_city", "package", 0.99, False),
    ],
)
def test_learned_spans_need_type_format_and_confidence(
    entity: str, value: str, confidence: float, served: bool
) -> None:
    assert plausible({"entity": entity, "value": value, "confidence_entity": confidence}, 0.5) is served


def test_out_of_scope_class_is_served_as_fallback(tiny_model_dir: Path) -> None:
    from nlu.predict import FALLBACK_INTENT, load_predictor

    p = load_predictor(tiny_model_dir)
    top = p.parse("where is my order")["intent"]["name"]
    p.meta.oos_intent = top  # pretend the model's favourite class is the out-of-scope one
    r = p.parse("where is my order")
    assert r["intent"]["name"] == FALLBACK_INTENT
    assert top not in [x["name"] for x in r["intent_ranking"]]


def test_calibration_on_realistic_messages(tiny_model_dir: Path) -> None:
    from nlu.model import load
    from nlu.train import calibrate_realistic

    model, tokenizer, meta = load(tiny_model_dir)
    items = [Labelled("hello there", "greet"), Labelled("where is my order", "track_order"),
             Labelled("tell me a joke", None), Labelled("unknown intent", "review")]  # fmt: skip
    calibrate_realistic(model, tokenizer, meta, items, torch.device("cpu"), 0.03)
    assert 0.0 <= meta.threshold <= 1.0 and meta.temperature > 0
    assert {"realistic_dev_intent_accuracy", "realistic_dev_oos_rejected"} <= set(meta.metrics)


FACTS = BotFacts.load(ROOT / "bot" / "data" / "rules.yml", ROOT / "bot" / "kb" / "faq.yml")


def _events(action: str, text: str = "", buttons: list[dict] | None = None) -> list[dict]:
    return [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "..."},
        {"event": "action", "name": action},
        {"event": "bot", "text": text, "data": {"buttons": buttons or []}},
        {"event": "action", "name": "action_listen"},
    ]


def test_first_reply_outcomes() -> None:
    refund = Labelled("can I return a jacket?", "check_refund_policy")
    answer = "You can return items within 30 days.\n(From our FAQ: “What is your return policy?”)"
    assert classify(refund, _events("action_answer_faq", answer), FACTS) == "right"
    wrong = "Standard delivery...\n(From our FAQ: “How much does shipping cost?”)"
    assert classify(refund, _events("action_answer_faq", wrong), FACTS) == "wrong"
    choice = [{"payload": '/faq_choose{"faq_id":"return-policy"}'}, {"payload": "/contact_human_agent"}]
    assert classify(refund, _events("action_answer_faq", "Is it one of these?", choice), FACTS) == "clarify_right"
    unsure = "I'm sorry, I don't know the answer to that. You can rephrase it"
    assert classify(refund, _events("action_answer_faq", unsure), FACTS) == "unknown"
    joke = Labelled("tell me a joke", None)
    assert classify(joke, _events("action_answer_faq", unsure), FACTS) == "right"
    assert classify(joke, _events("utter_complaint", "I'm sorry to hear that"), FACTS) == "wrong"
    track = Labelled("where is my parcel", "track_order")
    assert classify(track, _events("order_status_form"), FACTS) == "right"
    assert classify(Labelled("it's me", "inform"), _events("utter_ok"), FACTS) == "skipped"
    s = summary([refund, joke, track], ["right", "right", "wrong"])
    assert s["in_domain"]["n"] == 2 and s["in_domain"]["right"] == 0.5 and s["out_of_scope"]["right"] == 1.0


def test_catalog_terms_become_entities(tmp_path: Path) -> None:
    from nlu.gazetteer import Gazetteer

    f = tmp_path / "catalog.csv"
    rows = "A,Trail tent,Camping | two-person tent,Coleman\nB,Down bag,Camping | sleeping bag,\n"
    f.write_text("id,name,category,brand\n" + rows)
    g = Gazetteer.from_catalog_csv(f)
    found = g.extract("Do you have Coleman two-person tents or a sleeping bag?")
    assert [(e["entity"], e["value"], e["start"]) for e in found] == [
        ("brand", "Coleman", 12),
        ("product", "Camping | two-person tent", 20),
        ("product", "Camping | sleeping bag", 42),
    ]
    assert g.extract("the bagel was nice") == [] and Gazetteer({}).extract("tent") == []
    with pytest.raises(DataError, match="category"):
        f.write_text("id,name\nA,x\n")
        Gazetteer.from_catalog_csv(f)


def test_a_product_type_names_its_department() -> None:
    from bot.actions.recommend import constraints_from

    ents = [{"entity": "product", "value": "Camping | sleeping bag"}, {"entity": "max_price", "value": "90"}]
    c = constraints_from("a warm sleeping bag under 90", ents, ["Camping", "Running"])
    assert c.category == "Camping" and c.max_price == 90


def test_no_intent_classes_are_served_as_fallback(tiny_model_dir: Path) -> None:
    from nlu.predict import FALLBACK_INTENT, load_predictor

    p = load_predictor(tiny_model_dir)
    ranked = [r["name"] for r in p.parse("where is my order")["intent_ranking"]]
    p.meta.retrieval_intent = ranked[0]  # the favourite class plays "an FAQ topic without an intent"
    r = p.parse("where is my order")
    assert r["intent"]["name"] == FALLBACK_INTENT and ranked[0] not in [x["name"] for x in r["intent_ranking"]]
    assert p.meta.fallback_classes == {ranked[0]}


def test_sentiment_offsets_keep_calm_requests_neutral() -> None:
    from nlu.calibration import fit_sentiment_bias

    # columns: negative, neutral, positive; the head leans negative on the neutral rows
    logits = torch.tensor([[2.0, 1.5, 0.0], [2.0, 1.6, 0.0], [0.0, 2.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    gold = torch.tensor([1, 1, 1, 0, 2])
    bias = fit_sentiment_bias(logits, gold, neutral=1, negative=0, max_neutral_negative=0.0)
    pred = (logits + torch.tensor(bias)).argmax(-1)
    assert pred.tolist() == [1, 1, 1, 0, 2] and bias[1] == 0.0
    assert fit_sentiment_bias(logits[:0], gold[:0], neutral=1, negative=0, max_neutral_negative=0.0) == [0.0] * 3


def test_faq_topic_examples_and_sentiment_weights(tmp_path: Path) -> None:
    from nlu.data import faq_topic_examples
    from nlu.train import sentiment_class_weights

    kb = tmp_path / "kb.yml"
    kb.write_text("entries:\n  - {id: a, question: 'Gift cards?', alternatives: ['Vouchers?'], answer: x}\n"
                  "  - {id: b, question: 'Refunds?', answer: y, intents: [get_refund]}\n")  # fmt: skip
    rows = tmp_path / "rows.csv"
    rows.write_text("text,faq,sentiment\nthe mug came smashed,damaged-item,negative\n")
    got = faq_topic_examples("faq_topic", [kb], [rows])
    assert [(e.text, e.intent, e.sentiment) for e in got] == [
        ("Gift cards?", "faq_topic", None), ("Vouchers?", "faq_topic", None),
        ("the mug came smashed", "faq_topic", "negative"),
    ]  # fmt: skip
    train = [Example("a", sentiment="neutral")] * 9 + [Example("b", sentiment="positive")]
    w = sentiment_class_weights(train, ["negative", "neutral", "positive"])
    assert w[0] == 1.0 and w[2] > w[1] and float(w[2] / w[1]) == pytest.approx(3.0)


def test_recalibrate_refits_a_saved_model_without_training(tiny_model_dir: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from nlu.errors import DataError
    from nlu.model import META_FILE
    from nlu.train import load_config, recalibrate

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    rows = [
        ("hello there", "greet", "neutral"),
        ("where is my order", "track_order", "neutral"),
        ("tell me a joke", "none", "neutral"),
        ("this is awful", "complaint", "negative"),
    ]
    dev = tmp_path / "dev.jsonl"
    dev.write_text(
        "".join(
            json.dumps({"text": t, "intent": i, "faq": None, "entities": [], "sentiment": s}) + "\n" for t, i, s in rows
        )
    )
    weights = (model_dir / "heads.safetensors").read_bytes()
    meta = recalibrate(load_config(calibration_set=str(dev), max_oos_accept=0.5), model_dir)
    saved = json.loads((model_dir / META_FILE).read_text())
    assert saved["threshold"] == meta.threshold and saved["oos_threshold"] == meta.oos_threshold
    assert "Recalibrated on dev.jsonl" in (model_dir / "README.md").read_text()
    assert (model_dir / "heads.safetensors").read_bytes() == weights  # no training
    with pytest.raises(DataError, match="not found"):
        recalibrate(load_config(calibration_set=str(tmp_path / "missing.jsonl")), model_dir)
