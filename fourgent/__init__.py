"""Fourgent Runs: a self-hosted execution log for integration workflows."""

__version__ = "0.1.0"
