"""Guichet's runtime: settings, models, index reader and the answer pipeline."""
