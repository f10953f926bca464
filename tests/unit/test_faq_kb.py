"""Knowledge-base file format: valid files, and a clear error naming the line for each kind of mistake."""

from pathlib import Path

import pytest

from nlu.errors import KnowledgeBaseError
from nlu.faq.kb import load_kb, parse_kb

GOOD = """entries:
  - id: returns
    question: What is your return policy?
    answer: 30 days, free.
    alternatives: ["Can I return something?"]
    tags: [returns]
    links: [https://example.com/returns]
    intents: [check_refund_policy]
  - id: shipping
    question: How much is shipping?
    answer: Free over $50.
"""


def test_valid_file_parses_with_lines_and_hash() -> None:
    entries = parse_kb(GOOD)
    assert [e.id for e in entries] == ["returns", "shipping"]
    assert entries[0].alternatives == ("Can I return something?",) and entries[0].line == 2
    assert entries[1].line == 9 and entries[1].tags == ()
    changed = parse_kb(GOOD.replace("Free over $50.", "Free over $60."))
    assert entries[0].content_hash() == changed[0].content_hash()
    assert entries[1].content_hash() != changed[1].content_hash()


def test_shipped_demo_kb_is_valid() -> None:
    entries = load_kb(Path("bot/kb/faq.yml"))
    assert len(entries) >= 30 and all(e.answer for e in entries)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("entries: [\n  {id: a, question: q\n", ":3: not valid YAML"),
        ("- a\n- b\n", ":1: expected a mapping with an 'entries' list"),
        (GOOD.replace("    answer: Free over $50.\n", ""), ":9 (entry 'shipping'): 'answer' must be a non-empty text"),
        (GOOD.replace("id: shipping", "id: returns"), ":9: duplicate id 'returns' (first at line 2)"),
        (GOOD.replace("    tags: [returns]", "    tag: [returns]"), ":2: unknown key(s) tag"),
        (GOOD.replace("https://example.com/returns", "example.com"), "link 'example.com' is not an http(s) URL"),
        (GOOD.replace("id: shipping", "id: Shipping Costs"), "'id' must be a slug"),
        (GOOD.replace('["Can I return something?"]', "Can I return"), "'alternatives' must be a list"),
        ("entries:\n  - just text\n", "each entry must be a mapping"),
        ("", ":1: expected a mapping"),
    ],
)
def test_malformed_files_name_the_line(text: str, message: str) -> None:
    with pytest.raises(KnowledgeBaseError) as err:
        parse_kb(text, Path("kb.yml"))
    assert message in str(err.value) and str(err.value).startswith("kb.yml")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match="cannot read"):
        load_kb(tmp_path / "missing.yml")
    (tmp_path / "bin.yml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(KnowledgeBaseError, match="cannot read"):
        load_kb(tmp_path / "bin.yml")
