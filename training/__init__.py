"""Judgement learned from the town's documents: the verifier's training data, its training and its report.

Imports point one way: ``training`` uses ``bot`` (the answer path's candidates, the engines), never the reverse.
"""
