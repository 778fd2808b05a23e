"""Publieksdata: the shared audience-data platform of the Dutch cultural sector."""

__version__ = "0.1.0"
