"""LLM providers behind one small protocol, each registered once by its own module, with retries and a fallback chain."""
