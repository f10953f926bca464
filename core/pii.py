"""Personal data redaction: what a customer types is masked before it is stored, relayed or logged.

One :class:`Redactor` runs where customer text enters the system (the channels gateway), so the
transcript, Rasa's tracker store, the monitoring turns, alerts, exports and logs only ever see
the masked text. The kinds are configurable (``PII_REDACT``); a shop adds its own patterns
(``PII_PATTERNS``, a JSON object ``{"name": "regex"}``), each masked as ``[name]``.

Text is first normalised (:func:`normalise`: full-width and mathematical letters and digits become
ASCII, as NFKC makes them, and Unicode spaces become spaces; soft hyphens, word joiners and BOMs are
dropped; zero-width spaces, joiners and direction marks are dropped between ASCII characters or
digits, so emoji sequences and scripts that need them keep them; NFC). Masks are applied to the
normalised text, which is what :meth:`Redactor.redact` returns. Patterns see every digit (Arabic,
Devanagari, superscript...) as an ASCII digit and hyphens as ``-``; the returned text keeps them
as typed. Masks already
in a text are left alone, and the masked text is looked at again until nothing more is found, so
masking twice changes nothing.

What the built-in kinds catch (tests/data/pii_corpus.yml lists examples either way):

- ``email``: ``name@domain.tld``, and spelled out: ``jane at example dot com``, ``jane (at)
  example [dot] co [dot] uk``, ``jane.doe at gmail.com`` (a plain "at" next to common words,
  "look at this dot com", or a web site, "cheaper at shop.com", stays);
- ``card``: 13-19 digits not starting with 0, spaces, dashes or dots allowed, mixed too (a mistyped
  card number is still one; dates such as ``12.05.2024-14.05.2024`` stay), and a lone fragment
  of two or three groups of four digits that starts like a card (Visa 4, Mastercard 51-55 and
  2221-2720, Amex 34/37, Discover 6): ``4111 1111``; ranges like ``4000-5000`` stay. A card split
  over two messages: :meth:`Redactor.redact_continuation`;
- ``phone``: 9-15 digits with an optional ``+``, spaces, dots, dashes or brackets (order
  numbers, dates, prices and quantities have fewer digits or another shape and stay);
- ``iban``: upper case, a country code, two check digits and 11-30 letters or digits; in any
  case, with or without spaces, when the length is the country's and the check digits are right
  (or the account part is all digits);
- ``address``: a street line (house number, up to four words, a street word such as Street,
  Ave, Road, Lane, Straße) with an optional flat number, UK postcodes, and European street lines
  with an optional postcode and town: ``12 rue de la Paix, 75002 Paris``, ``Calle Mayor 3``,
  ``Via Roma 10``, ``Berliner Straße 10``; a one-word street and a number (``Hauptstraße 5``,
  ``Kerkstraat 12``) only with the postcode and town after it.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

DEFAULT_KINDS = ("email", "iban", "card", "phone", "address")  # also the order rules apply in
_PASSES = 4  # redact masks the masked text again until nothing more is found, at most this often

# ----- normalisation ---------------------------------------------------------------------------
# Invisible characters with no use in chat text: dropped everywhere.
_INVISIBLE = re.compile("[\u00ad\u2060-\u2064\ufeff]")
# Compatibility forms that NFKC makes ASCII: full-width and small forms, ligatures, mathematical
# letters and digits. Only these: NFKC of everything would also rewrite ordinary text (Korean "ㅋㅋ"
# into conjoining jamo, "m²" into "m2", "…" into "...", "½" into "1⁄2").
_COMPAT = re.compile("[\ufb00-\ufb06\ufe50-\ufe6b\uff01-\uff5e\U0001d400-\U0001d7ff]")
_SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")  # Unicode spaces but the ASCII one
# Zero-width spaces and joiners, direction marks: needed by emoji sequences and some scripts, so
# only dropped where both neighbours are ASCII characters or digits (a card, an email).
_JOINERS = re.compile(r"(?<=[\x00-\x7f\d])[\u061c\u180e\u200b-\u200f\u202a-\u202e\u2066-\u2069]+(?=[\x00-\x7f\d])")
# For the patterns only, one character for one: every digit in ASCII, hyphens as "-".
_HYPHENS = "\u2010\u2011\u2012\u2212"
_DIGIT_SYMBOLS = (
    "\u00b2\u00b3\u00b9\u2070\u2074-\u2079\u2080-\u2089\u2460-\u2468\u2474-\u247c\u2488-\u2490\u24f5-\u24fd"
)
_FOLD = re.compile(rf"(?![0-9])\d|[{_HYPHENS}{_DIGIT_SYMBOLS}]")


def normalise(text: str) -> str:
    """``text`` as the masks see it: full-width forms in ASCII, invisible characters dropped, NFC.

    Full-width, small and mathematical letters, digits and signs and ligatures become ASCII (as NFKC
    makes them), soft hyphens, word joiners and BOMs are dropped, the text is composed (NFC), Unicode
    spaces become spaces, and zero-width spaces, joiners and direction marks between ASCII characters
    or digits are dropped. Idempotent; ASCII text is returned as it is. Accents, emoji sequences,
    other scripts and their digits, ``…``, ``m²`` and ``½`` stay as typed.

    Args:
        text: A message as the customer typed it.

    Returns:
        The normalised text.
    """
    if text.isascii():
        return text
    text = unicodedata.normalize("NFC", _COMPAT.sub(_ascii_form, _INVISIBLE.sub("", text)))
    return _JOINERS.sub("", _SPACES.sub(" ", text))


def _ascii_form(m: re.Match[str]) -> str:
    """A compatibility character's NFKC form where that is ASCII, else the character."""
    folded = unicodedata.normalize("NFKC", m[0])
    return folded if folded.isascii() else m[0]


def _fold(text: str) -> str:
    """The normalised ``text`` with every digit in ASCII and hyphens as ``-``, for the patterns (same length)."""
    if text.isascii():
        return text
    return _FOLD.sub(lambda m: "-" if m[0] in _HYPHENS else str(unicodedata.digit(m[0])), text)


# ----- email -----------------------------------------------------------------------------------
# Words next to a plain "at" in ordinary sentences ("look at this dot com", "I'm at work.com").
_NOT_MAIL_TEXT = (
    "a all also am an and are arrive arrived arriving available be been being best bought but buy cheaper cost "
    "costs delivered delivery even first good great her here him his home is it its just last least live lived "
    "lives living look looked looking looks me my nice night noon not now office once only online open or order "
    "ordered our point price priced prices sale school shop shopping sold start started still stay stayed staying "
    "store that the their them there these they this those us was we were work worked working works you your"
)
_NOT_MAIL_WORDS = frozenset(_NOT_MAIL_TEXT.split())
# Mail providers: with a plain "at" and a dotted domain ("jane at gmail.com") the domain must be one,
# or the name must look like a mailbox (a dot, digit or _ in it), else "cheaper at shop.com" is masked.
_MAIL_PROVIDER_TEXT = (
    "aol free gmail gmx googlemail hotmail icloud kpn laposte libero live mail me msn orange outlook proton "
    "protonmail sfr t-online tiscali virgilio wanadoo web yahoo yandex ziggo"
)
_MAIL_PROVIDERS = frozenset(_MAIL_PROVIDER_TEXT.split())
_TLDS = "com|net|org|edu|gov|mil|int|info|biz|name|pro|io|ai|app|dev|xyz|online|site|shop|store|tech|email|mail|eu"
_AT = r"(?P<at>\s?@\s?|\s?[(\[{<]\s?(?i:at)\s?[)\]}>]\s?|\s(?i:at)\s)"
_DOT = r"(?:\.|\s?[(\[{<]\s?(?i:dot)\s?[)\]}>]\s?|\s(?i:dot)\s)"
# An email address (possessive, so a long word before "@" cannot make it backtrack); core.shop uses it too.
EMAIL = r"(?<![\w.+-])[\w.+-]++@[\w-]+(?:\.[\w-]+)+"
_SPELLED_EMAIL = (
    r"(?<![\w.+-])(?P<local>[\w+-]++(?:\.[\w+-]++)*+(?:\s(?i:dot)\s[\w+-]++)*+)"
    rf"{_AT}(?P<domain>[\w-]++(?:{_DOT}[\w-]++)*{_DOT}(?i:{_TLDS}|[a-z]{{2}}))\b"
)
# Only texts with one of these can hold a spelled-out email (most messages have none: one quick search).
_SPELLED_EMAIL_GATE = r"(?i)[\s(\[{<]dot\b|[(\[{<]\s?at\s?[)\]}>]|@|\sat\s[\w-]+\.\w"


def _mail_spelled(m: re.Match[str]) -> int | None:
    """The end of a spelled-out email, or None where the "at" or "@" may be ordinary English.

    ``(at)`` and a bare ``@`` are taken as they are; around a plain "at" or a spaced "@" neither the
    name nor the domain may be a common word ("look at this dot com", "I'm @ home.com"), and after a
    plain "at" with a dotted domain the name must look like a mailbox or the domain be a mail provider.
    """
    at = m["at"].strip().lower()
    if at.startswith(("(", "[", "{", "<")) or m["at"] == "@":
        return m.end()
    first_label = re.split(r"[\s.(\[{<]", m["domain"], maxsplit=1)[0].lower()
    if m["local"].lower() in _NOT_MAIL_WORDS or first_label in _NOT_MAIL_WORDS:
        return None
    if at == "@" or re.search(r"(?i)[\s(\[{<]dot\b", m["domain"]):
        return m.end()
    mailbox_like = re.search(r"[\d._+-]", m["local"]) and re.search(r"[^\W\d_]", m["local"])
    return m.end() if mailbox_like or first_label in _MAIL_PROVIDERS else None


# ----- IBAN ------------------------------------------------------------------------------------
_IBAN_LENGTHS = {
    **dict.fromkeys(["NO"], 15),
    **dict.fromkeys(["BE"], 16),
    **dict.fromkeys(["DK", "FI", "FK", "FO", "GL", "NL", "SD"], 18),
    **dict.fromkeys(["MK", "SI"], 19),
    **dict.fromkeys(["AT", "BA", "EE", "KZ", "LT", "LU", "MN", "XK"], 20),
    **dict.fromkeys(["CH", "HR", "LI", "LV"], 21),
    **dict.fromkeys(["BG", "BH", "CR", "DE", "GB", "GE", "IE", "ME", "RS", "VA"], 22),
    **dict.fromkeys(["AE", "GI", "IL", "IQ", "OM", "SO", "TL"], 23),
    **dict.fromkeys(["AD", "CZ", "ES", "MD", "PK", "RO", "SA", "SE", "SK", "TN", "VG"], 24),
    **dict.fromkeys(["LY", "PT", "ST"], 25),
    **dict.fromkeys(["IS", "TR"], 26),
    **dict.fromkeys(["BI", "DJ", "FR", "GR", "IT", "MC", "MR", "SM"], 27),
    **dict.fromkeys(["AL", "AZ", "BY", "CY", "DO", "GT", "HU", "LB", "NI", "PL", "SV"], 28),
    **dict.fromkeys(["BR", "EG", "PS", "QA", "UA"], 29),
    **dict.fromkeys(["JO", "KW", "MU", "YE"], 30),
    **dict.fromkeys(["MT", "SC"], 31),
    **dict.fromkeys(["LC"], 32),
    **dict.fromkeys(["RU"], 33),
}


def _iban_any_case(m: re.Match[str]) -> int | None:
    """The end of an IBAN in any case: the country's length, ending between words, check digits right."""
    length = _IBAN_LENGTHS.get(m[0][:2].upper())
    if length is None:
        return None
    seen = 0
    for i, c in enumerate(m[0]):
        seen += c != " "
        if seen == length:
            end = m.start() + i + 1
            break
    else:
        return None
    if end < m.end() and m[0][i + 1] != " ":
        return None  # the country's length ends inside a word
    compact = m[0][: i + 1].replace(" ", "").upper()
    valid = int("".join(str(int(c, 36)) for c in compact[4:] + compact[:4])) % 97 == 1
    return end if valid or compact[4:].isdigit() else None


# ----- card ------------------------------------------------------------------------------------
_SEP = r"(?: ?[.\-–—] ?| {1,2})"  # a dot, a dash (also en and em dashes) or a space or two
_CARD_START = r"(?:4\d{3}|5[1-5]\d\d|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720|3[47]\d\d|6\d{3})"
_DAY_OR_MONTH = r"(?:0?[1-9]|[12]\d|3[01])"
_DATE = re.compile(
    rf"(?<!\d)(?:{_DAY_OR_MONTH}([./-]){_DAY_OR_MONTH}\1(?:19|20)\d\d"
    rf"|(?:19|20)\d\d([./-])(?:0?[1-9]|1[0-2])\2{_DAY_OR_MONTH})(?!\d)"
)


def _not_dates(m: re.Match[str]) -> int | None:
    """The end of a card number, or None where the digits are dates (``12.05.2024-14.05.2024``)."""
    return None if _DATE.search(m[0]) else m.end()


def _not_a_range(m: re.Match[str]) -> int | None:
    """The end of a card fragment, or None for a range of round numbers (``4000-5000``)."""
    pair = re.fullmatch(r"(\d{4}) ?[-–—] ?(\d{4})", m[0])
    return None if pair and pair[1] < pair[2] and pair[1][-1] == pair[2][-1] == "0" else m.end()


# A previous message that ends like the first part of a card: a masked card, or card-like digits.
_ENDS_LIKE_CARD = re.compile(rf"(?:\[card\]|(?<![\w.-])(?=[2-6])\d+(?:{_SEP}\d+)*)[\s.,:;-]*\Z")
_STARTS_WITH_DIGITS = re.compile(rf"\s*(\d+(?:{_SEP}\d+)*)(?![\w-])")


def _continues_card(previous: str, lead: re.Match[str]) -> bool:
    """Whether the digits ``lead`` that begin a message go on with a card that ``previous`` (masked) ends with.

    After ``[card]`` 3 to 19 more digits do (the rest, or the security code); after unmasked digits
    that start like a card (``4111``), those and ``lead`` must make 13 to 19 digits together. A date
    or a quantity ("100 euros") does not.
    """
    tail = _ENDS_LIKE_CARD.search(previous[-40:])
    more = sum(c.isdigit() for c in lead[1])
    quantity = _QUANTITY.match(lead.string, lead.end())
    if quantity and _JOINING_WORD.fullmatch(quantity[0].strip()):  # "1111 1111 and it was charged twice"
        quantity = None
    if tail is None or not 3 <= more <= 19 or _DATE.search(lead[1]) or quantity:
        return False
    if tail[0].startswith("[card]"):
        return True
    before = re.sub(r"\D", "", tail[0])
    return re.match(_CARD_START, before) is not None and 13 <= len(before) + more <= 19


# ----- address ---------------------------------------------------------------------------------
# Street words matched in any case, and ones so common in other senses ("on the way") that only the
# capitalised form counts.
_STREET_ANY_CASE = "street|st|avenue|ave|road|rd|lane|ln|boulevard|blvd|parkway|pkwy|highway|hwy|strasse|straße|str"
_STREET_CAPITALISED = "Drive|Dr|Way|Place|Pl|Close|Court|Ct|Square|Sq|Terrace|Crescent"
_UPPER = "A-ZÀ-ÖØ-Þ"
_NAME = rf"(?:[dlDL]['’])?[{_UPPER}][\w'’-]*"  # a capitalised word of a street's name
_OF = (  # the small words inside street names: rue de la Paix, Avenida de los Reyes, Laan van Meerdervoort
    r"(?:de|del|de\slas?|de\slos|la|le|les|du|des|di|della|dello|delle|dei|degli|da|do|dos|das|e|y"
    r"|van|van\sde[nr]?|den|der|het|am|an|auf|im|zum|zur)\s"
)
_STREET_NAME = rf"(?:{_OF}){{0,2}}{_NAME}(?:\s(?:{_OF}){{0,2}}{_NAME}){{0,3}}"
# After a house number: a postcode and a town (75002 Paris, 1017 GL Amsterdam, D-10115 Berlin).
_TOWN = rf"[^\W\d_][\w'’-]*(?:\s(?:(?:am|an|im|sur|sous|en|de|del|di|aan|den)\s)?[{_UPPER}][\w'’-]*){{0,2}}"
_POSTCODE_TOWN = rf",?\s(?:[A-Z]{{1,2}}-)?\d{{4,5}}(?:\s?[A-Z]{{2}})?\s{_TOWN}"
_HOUSE_NUMBER = r"(?:n[º°o.]\s?)?\d{1,4}(?:\s?(?:bis|ter)\b|[a-zA-Z]\b|\b)"
# What follows a number that counts or costs something ("via Amazon 2 days ago", "via PayPal 20 euros").
_QUANTITY_AFTER = (
    r"(?:[.,:/]\d|\s?(?:[%$€£x×]|(?i:days?|weeks?|months?|years?|hours?|hrs?|h|minutes?|mins?|seconds?|times?"
    r"|nights?|items?|pieces?|pcs|pairs?|units?|packs?|boxes|orders?|tickets?|people|persons?|adults?|kids?"
    r"|euros?|eur|dollars?|usd|pounds?|gbp|kg|g|cm|mm|m|km|ml|l|gb|mb|tb|inch(?:es)?|ft|lbs?|oz|stars?|am|pm"
    r"|of|or|and|to|more|less|each|per|left|jours?|fois|semaines?|mois|tage?n?|mal|wochen?|monate?|stunden?"
    r"|días?|dias?|veces|semanas?|meses|giorni|volte|settimane?|mesi|ore|dagen|keer|weken|maanden)\b))"
)
_NOT_A_HOUSE = rf"(?!{_QUANTITY_AFTER})"
_QUANTITY = re.compile(_QUANTITY_AFTER)
_JOINING_WORD = re.compile(r"(?i:of|or|and|to|more|less|each|per|left)")  # follow a quantity, or a card's rest
_FRENCH_FIRST = r"rue|avenue|av\.|bd|boulevard|chemin|place|allée|allee|impasse|quai|route|cours|passage|square"
_STREET_FIRST = (  # Calle Mayor 3, Via Roma 10, Rue de la Loi 16 (Belgium), Laan van Meerdervoort 12
    r"(?i:calle|c/|avenida|avda\.?|paseo|plaza|pza\.?|plaça|carrer|camino|ronda|travesía|travesia|glorieta|via"
    r"|viale|piazza|piazzale|corso|vicolo|largo|strada|lungomare|rua|rue|chemin|allée|quai|laan|plein)"
    r"|Place|Avenue|Boulevard"
)
_GERMAN_AFTER = r"Straße|Strasse|Str\.|Weg|Platz|Gasse|Allee|Damm|Ufer|Chaussee|Steig|Pfad"
_ONE_WORD_STREET = (  # Hauptstraße, Kerkstraat, Prinsengracht
    r"(?i:straße|strasse|str\.|weg|platz|gasse|allee|ring|damm|ufer|chaussee|steig|pfad|markt"
    r"|straat|laan|plein|gracht|kade|singel|dijk|dreef|steeg|wal)"
)
# (pattern, gate): each pattern starts with a character class where it can (the regex engine then
# skips ahead quickly), and runs only on texts where its gate is found.
_ADDRESS: list[tuple[str, str]] = [
    (  # number first, French: 12 rue de la Paix, 75002 Paris; 3 bis avenue Foch
        rf"[0-9](?<!\w[0-9])[0-9]{{0,3}}(?:\s?(?:bis|ter)|[a-zA-Z])?,?\s(?i:{_FRENCH_FIRST})\s{_STREET_NAME}"
        rf"(?:{_POSTCODE_TOWN})?",
        r"\d",
    ),
    (  # street word first, number after: Calle Mayor 3, 28013 Madrid; Via Roma 10
        rf"\b(?=[abcgloprqstvABCGLOPRQSTV])(?:{_STREET_FIRST})\s{_STREET_NAME},?\s{_HOUSE_NUMBER}{_NOT_A_HOUSE}"
        rf"(?:{_POSTCODE_TOWN})?",
        r"\d",
    ),
    (  # name then a German street word, number after: Berliner Straße 10
        rf"\b(?:{_NAME}[\s-]){{1,3}}(?:{_GERMAN_AFTER})\s{_HOUSE_NUMBER}(?:{_POSTCODE_TOWN})?",
        rf"(?:{_GERMAN_AFTER})\s[0-9]",
    ),
    (  # one-word street and number, then the postcode and town: Hauptstraße 5, 10115 Berlin
        rf"[{_UPPER}](?<!\w[{_UPPER}])[\w-]*{_ONE_WORD_STREET}\s{_HOUSE_NUMBER}{_POSTCODE_TOWN}",
        r"\d",
    ),
    (  # number first, English word order: 221B Baker Street, 7 elm street
        r"[0-9](?<!\w[0-9])[0-9]{0,4}[a-zA-Z]?(?:[ ,]+[A-Za-zÀ-ÿ'.-]+){1,4}"
        rf"\s(?:(?i:{_STREET_ANY_CASE})|{_STREET_CAPITALISED})\b\.?"
        r"(?:\s[NSEW]{1,2}\b)?"
        r"(?:,?\s(?i:apt|apartment|flat|unit|suite|#)\.?\s?\w+)?",
        r"\d",
    ),
    (r"[A-Z](?<!\w[A-Z])[A-Z]?[0-9][A-Z0-9]?\s?[0-9][A-Z]{2}\b", r"\d"),  # UK postcodes
]


def _phone_digits(m: re.Match[str]) -> int | None:
    """The end of a phone number, or None where it has too few or too many digits."""
    return m.end() if 9 <= sum(c.isdigit() for c in m[0]) <= 15 else None


_Check = Callable[[re.Match[str]], int | None]  # a match's end, or None to drop it


@dataclass(frozen=True)
class _Rule:
    """One pattern of a kind; ``check`` gives a match's end, or None to drop it."""

    kind: str
    pattern: re.Pattern[str]
    check: _Check | None = None
    retry: bool = True  # after a dropped match, look again from its next character
    gate: re.Pattern[str] | None = None  # the pattern only runs on a text where this is found


def _rule(kind: str, pattern: str, check: _Check | None = None, *, gate: str = r"\d", retry: bool = True) -> _Rule:
    """A compiled built-in rule of ``kind`` that only runs on texts where ``gate`` is found."""
    return _Rule(kind, re.compile(pattern), check, retry, re.compile(gate))


_CARD = rf"[1-9](?<![\w-][1-9])(?<!\d\.[1-9])(?:{_SEP}?[0-9]){{12,18}}(?![\w-])"
_CARD_FRAGMENT = (
    rf"(?<![\w.-])(?<![0-9] )(?:{_CARD_START}(?:{_SEP}[0-9]{{4}}){{1,2}}|3[47][0-9]{{2}}{_SEP}[0-9]{{6}})"
    rf"(?![\w-]|{_SEP}[0-9])"
)
_BUILTIN: dict[str, list[_Rule]] = {
    "email": [
        _rule("email", EMAIL, gate="@"),
        _rule("email", _SPELLED_EMAIL, _mail_spelled, gate=_SPELLED_EMAIL_GATE),
    ],
    "iban": [
        _rule("iban", r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", gate=r"[A-Z]{2}[0-9]{2}"),
        _rule("iban", r"(?i)\b[a-z]{2}\d{2}(?: ?[a-z0-9]){11,32}\b", _iban_any_case),
    ],
    "card": [
        _rule("card", _CARD, _not_dates),
        _rule("card", _CARD_FRAGMENT, _not_a_range, gate=rf"[0-9]{{4}}{_SEP}[0-9]{{4}}"),
    ],
    "phone": [
        _rule("phone", r"(?<![\w+])\+?\(?\d[\d .()/-]{7,}\d(?!\w)", _phone_digits, retry=False),
    ],
    "address": [_rule("address", p, gate=g) for p, g in _ADDRESS],
}


class BadPattern(ValueError):
    """A configured redaction kind or pattern is unknown or not a valid regular expression."""


@dataclass(frozen=True)
class Finding:
    """One piece of personal data found: its kind and where it was (in the normalised text)."""

    kind: str
    start: int
    end: int


class Redactor:
    """Masks the configured kinds of personal data as ``[kind]``."""

    def __init__(self, kinds: Iterable[str] = DEFAULT_KINDS, extra: Mapping[str, str] | None = None) -> None:
        """``kinds``: built-in kinds to mask, in order; ``extra``: the shop's own ``{name: regex}``."""
        self.rules: list[_Rule] = []
        self.kinds = frozenset(kinds)
        if unknown := self.kinds - set(_BUILTIN):
            raise BadPattern(f"unknown PII kind {sorted(unknown)[0]!r}; known: {', '.join(_BUILTIN)}")
        for kind in [k for k in _BUILTIN if k in self.kinds]:  # fixed precedence: an IBAN is not a card
            self.rules += _BUILTIN[kind]
        for name, pattern in (extra or {}).items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", name):
                raise BadPattern(f"PII pattern name {name!r}: use lower-case letters, digits and _")
            try:
                self.rules.append(_Rule(name, re.compile(pattern)))
            except re.error as e:
                raise BadPattern(f"PII pattern {name!r} is not a valid regular expression: {e}") from e
        names = sorted({re.escape(rule.kind) for rule in self.rules})
        self._mask = re.compile(rf"\[(?:{'|'.join(names)})\]") if names else re.compile(r"(?!)")

    def findings(self, text: str) -> list[Finding]:
        """What :meth:`redact` masks first, earlier rules first, without overlaps.

        Masks already in the text (``[card]``) are left alone. :meth:`redact` then looks once more
        at the masked text, where a shape that overlapped a finding may be left whole.

        Args:
            text: The text to search; positions are those in ``normalise(text)``.

        Returns:
            The findings in the order they occur.
        """
        return self._findings(_fold(normalise(text)), [])

    def redact(self, text: str) -> str:
        """``text``, normalised (:func:`normalise`), with every finding replaced by ``[kind]``.

        Args:
            text: A message or a log line.

        Returns:
            The masked text; masking it again changes nothing.
        """
        if not text or not self.rules:
            return text
        return self._settled(normalise(text), [])

    def redact_continuation(self, previous: str, text: str) -> str:
        """Mask ``text`` as :meth:`redact` does, and the rest of a card number split over two messages.

        A customer who types "my card is 4111 1111" and then "1111 1111" sends a card number in two
        messages. When ``previous`` ends with a card (``[card]``: the first message was masked) or
        with unmasked digits that start like one (``4111``, with the new digits 13 to 19 in all), the
        digit groups that ``text`` begins with (3 to 19 digits: the rest of the number, or the
        security code) are masked as ``[card]`` too. Pure: the caller passes the previous message.

        Example:
            ``redactor.redact_continuation("my card is [card]", "1111 1111 thanks")`` returns
            ``"[card] thanks"``; with ``previous=""`` it is :meth:`redact`.

        Args:
            previous: The conversation's previous customer message, as stored (masked; raw text is
                masked here first), or ``""`` when there is none.
            text: The new message, raw.

        Returns:
            The masked new message.
        """
        if not text or not self.rules:
            return text
        norm = normalise(text)
        lead = _STARTS_WITH_DIGITS.match(_fold(norm))
        if lead and "card" in self.kinds and _continues_card(_fold(self.redact(previous)), lead):
            return self._settled(norm, [Finding("card", lead.start(1), lead.end(1))])
        return self._settled(norm, [])

    def may_continue(self, text: str) -> bool:
        """Whether :meth:`redact_continuation` could use the previous message for ``text`` (it begins with
        digits and cards are masked): callers fetch the previous message only then."""
        return bool(text) and "card" in self.kinds and _STARTS_WITH_DIGITS.match(_fold(normalise(text))) is not None

    def _settled(self, norm: str, forced: list[Finding]) -> str:
        """The normalised text masked until a pass finds nothing more (a card leaves "75002 75002")."""
        for _ in range(_PASSES):
            found = self._findings(_fold(norm), forced)
            if not found:
                break
            norm, forced = _masked(norm, found), []
        return norm

    def _findings(self, folded: str, forced: list[Finding]) -> list[Finding]:
        """The findings in the folded normalised text, after the ``forced`` ones, around masks already there."""
        masks = [Finding("", m.start(), m.end()) for m in self._mask.finditer(folded)]
        taken = [*forced, *masks]
        gates: dict[re.Pattern[str], bool] = {}
        for rule in self.rules:
            if rule.gate is not None and rule.gate not in gates:
                gates[rule.gate] = rule.gate.search(folded) is not None
            if rule.gate is not None and not gates[rule.gate]:
                continue
            for start, end in _spans(rule, folded):
                if not any(start < f.end and f.start < end for f in taken):
                    taken.append(Finding(rule.kind, start, end))
        return sorted((f for f in taken if f.kind), key=lambda f: f.start)


def _spans(rule: _Rule, text: str) -> Iterable[tuple[int, int]]:
    """Where ``rule`` matches in ``text``: (start, end) pairs, its check applied."""
    if rule.check is None:
        yield from (m.span() for m in rule.pattern.finditer(text))
        return
    pos = 0
    while pos <= len(text) and (m := rule.pattern.search(text, pos)):
        end = rule.check(m)
        if end is not None:
            yield m.start(), end
        pos = max(end or 0, m.start() + 1) if rule.retry or end is not None else max(m.end(), m.start() + 1)


def _masked(text: str, findings: list[Finding]) -> str:
    """``text`` with each finding replaced by ``[kind]``."""
    out, last = [], 0
    for f in findings:
        out += [text[last : f.start], f"[{f.kind}]"]
        last = f.end
    return "".join([*out, text[last:]])


def build_redactor(kinds: str, patterns: str = "") -> Redactor:
    """A redactor from the settings' strings: comma-separated kinds, and a JSON object of extra patterns."""
    try:
        extra = json.loads(patterns) if patterns.strip() else {}
    except json.JSONDecodeError as e:
        raise BadPattern(f"PII_PATTERNS must be a JSON object of name: regex ({e})") from e
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        raise BadPattern('PII_PATTERNS must be a JSON object of name: regex, e.g. {"postcode": "\\\\d{5}"}')
    return Redactor([k.strip() for k in kinds.split(",") if k.strip()], extra)


class RedactingFilter(logging.Filter):
    """A logging filter that masks personal data in every record's final message."""

    def __init__(self, redactor: Redactor) -> None:
        """Mask with ``redactor``."""
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its redacted rendering (arguments folded in)."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as usual
            return True
        masked = self.redactor.redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def setup_logging(fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s", level: int = logging.INFO) -> None:
    """The services' logging: ``fmt`` on stderr, personal data masked in every record (all kinds)."""
    logging.basicConfig(level=level, format=fmt)
    masker = RedactingFilter(Redactor())
    for handler in logging.getLogger().handlers:
        handler.addFilter(masker)
