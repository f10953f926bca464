"""Bad input at the HTTP boundary, shared by the gateway and the NLU service.

- :func:`install` replaces FastAPI's request-validation handler with one that cannot fail and
  never echoes the request: FastAPI's own answers each error with its ``input`` (and ``ctx``),
  so a number like ``1e400`` (``inf``) or a lone surrogate (``"\\ud800"``) made the error
  response itself unserialisable, and the client got a 500.
- :data:`UnicodeStr` rejects text that is not valid Unicode (a lone surrogate: valid in a JSON
  string and in a Python ``str``, but not writable to the database, Rasa or a UTF-8 response);
  :data:`PayloadStr` also refuses a Rasa payload (``/intent{...}``) whose JSON nests too deep.
- :func:`json_too_deep` measures how deep JSON nests with a scan of its brackets (no recursion,
  no parsing), so deeply nested JSON is refused before anything recursive reads it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BeforeValidator, ValidationInfo
from pydantic_core import PydanticCustomError

log = logging.getLogger(__name__)
MAX_JSON_DEPTH = 32
MAX_MSG_CHARS = 300
MAX_ERRORS = 20
# A JSON string, possibly unterminated (then it runs to the end): every match ends where the next
# may begin, so stripping strings is linear even on hostile input (no re-scan from each quote).
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = frozenset(b"[{")


def valid_unicode(text: str) -> bool:
    """Whether ``text`` can be encoded as UTF-8 (False when it holds a lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def safe_text(text: object, limit: int = MAX_MSG_CHARS) -> str:
    """``text`` as a string that any UTF-8 writer accepts (surrogates escaped), cut to ``limit`` characters."""
    s = str(text)[:limit]
    return s if valid_unicode(s) else s.encode("utf-8", "backslashreplace").decode("utf-8")


def _reject_invalid_unicode(value: object, info: ValidationInfo) -> object:
    """A ``BeforeValidator``: a string with a lone surrogate is refused with a clear message."""
    if isinstance(value, str) and not valid_unicode(value):
        raise PydanticCustomError("invalid_unicode", "{field} is not valid Unicode", {"field": info.field_name})
    return value


UnicodeStr = Annotated[str, BeforeValidator(_reject_invalid_unicode)]
"""A ``str`` field that refuses lone surrogates (422 "<field> is not valid Unicode")."""


def _reject_deep_payload(value: str) -> str:
    """An ``AfterValidator``: a Rasa payload (``/intent{...}``) whose JSON nests too deep is refused.

    Rasa and the NLU service (``nlu.payload``) read a payload's JSON with ``json.loads``, which
    recurses: near 1,000 levels it raises RecursionError, a server error.
    """
    if value.lstrip().startswith("/") and json_too_deep(value, MAX_JSON_DEPTH):
        raise PydanticCustomError("json_too_deep", "the payload's JSON nests deeper than {limit} levels",
                                  {"limit": MAX_JSON_DEPTH})  # fmt: skip
    return value


PayloadStr = Annotated[UnicodeStr, AfterValidator(_reject_deep_payload)]
"""Text that may be a Rasa payload: valid Unicode, and JSON nested at most 32 levels after a leading ``/``."""


def json_too_deep(data: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON in ``data`` nests arrays and objects deeper than ``limit`` levels.

    Brackets inside strings do not count. Malformed JSON is measured as far as its brackets go
    (a parser refuses it anyway). Linear time, no recursion: safe on any input.

    Args:
        data: JSON text (or text that contains JSON, such as a Rasa payload ``/intent{...}``).
        limit: The deepest nesting allowed.

    Returns:
        True when some bracket opens more than ``limit`` levels deep.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= limit:  # the usual case: too few brackets to nest that deep
        return False
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = 0
    for b in brackets:
        depth += 1 if b in _OPENERS else -1
        if depth > limit:
            return True
    return False


def _safe_loc(loc: object) -> list[str | int]:
    items = loc if isinstance(loc, Sequence) and not isinstance(loc, str | bytes) else [loc]
    return [i if isinstance(i, int) and not isinstance(i, bool) else safe_text(i, 100) for i in items][:10]


def _safe_msg(error: Mapping[str, Any], loc: list[str | int]) -> str:
    if error.get("type") == "string_unicode":  # pydantic's own refusal of a lone surrogate
        field = next((i for i in reversed(loc) if isinstance(i, str) and i not in {"body", "query"}), "the text")
        return f"{field} is not valid Unicode"
    return safe_text(error.get("msg", "invalid value"))


def safe_errors(errors: Iterable[Any]) -> list[dict[str, Any]]:
    """Validation errors as ``loc`` / ``msg`` / ``type`` only: no ``input`` or ``ctx`` of the request.

    Every value is a plain string or int that encodes as JSON and UTF-8; at most 20 errors.
    """
    out: list[dict[str, Any]] = []
    for error in errors:
        if len(out) == MAX_ERRORS:
            break
        e = error if isinstance(error, Mapping) else {}
        loc = _safe_loc(e.get("loc", ()))
        out.append({"loc": loc, "msg": _safe_msg(e, loc), "type": safe_text(e.get("type", "invalid"), 100)})
    return out


async def validation_error(request: Request, exc: Exception) -> Response:
    """422 with a ``detail`` list that says which field is wrong and why; never fails, never echoes input.

    Logs the path and the error types only (never the body).
    """
    try:
        detail = safe_errors(exc.errors() if isinstance(exc, RequestValidationError) else [])
    except Exception:  # this handler must answer whatever it is given: a generic message then
        log.exception("could not describe a validation error on %s", safe_text(request.url.path, 200))
        detail = []
    if not detail:
        detail = [{"loc": ["body"], "msg": "the request is not valid", "type": "invalid"}]
    log.info("invalid request %s %s: %s", request.method, safe_text(request.url.path, 200),
             ", ".join(sorted({str(d["type"]) for d in detail})))  # fmt: skip
    return JSONResponse({"detail": detail}, status_code=422)


def install(app: FastAPI) -> None:
    """Register :func:`validation_error` as ``app``'s RequestValidationError handler."""
    app.add_exception_handler(RequestValidationError, validation_error)
