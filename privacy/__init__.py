"""Identifiers out: keyed pseudonyms, generalisation and the keyring."""
