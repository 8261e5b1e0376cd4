"""Evaluation: how well retrieval and answers do on labelled questions."""
