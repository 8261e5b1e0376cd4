"""Answers: what the engine says back, with its citations, or why it abstained."""
