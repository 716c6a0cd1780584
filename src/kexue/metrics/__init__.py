"""Metrics shared by the articles (classification scores, likelihoods, sample quality, ...)."""
