"""Releases out: immutable release folders of the published marts."""
