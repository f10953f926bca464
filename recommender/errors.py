"""Typed errors of the recommender package (mapped to replies or exit codes at the boundary)."""


class RecommenderError(Exception):
    """Base class of recommender errors."""


class DataError(RecommenderError):
    """Behaviour data is malformed; the message names the file and row."""


class ModelNotFoundError(RecommenderError):
    """No trained behaviour model at the given path."""
