"""Evaluation metrics shared by the articles."""
