"""Evaluation: drives the real answer pipeline over question sets and scores it."""
