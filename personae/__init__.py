"""Personae: entity-linked hybrid search for news and document collections."""

__version__ = "0.1.0"
