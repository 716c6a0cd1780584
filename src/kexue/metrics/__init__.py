"""Metrics shared by the articles."""
