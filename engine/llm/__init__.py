"""LLM providers behind one small protocol, with retries and a fallback chain."""
