"""Strategies: the small interface a user implements, and the built-in Intel slider engine."""
