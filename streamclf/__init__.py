"""streamclf: a streaming spoken-command classifier."""

__version__ = "0.1.0"
