"""Helpers every domain shares: pagination and the generic repository functions."""
