"""Building the provider chain that the settings describe."""

from __future__ import annotations

from engine.config import Settings
from engine.llm.base import Provider
from engine.llm.chain import ProviderChain
from engine.llm.extractive import ExtractiveProvider
from engine.llm.retry import RetryPolicy


def build_provider(spec: str, settings: Settings) -> Provider:
    kind, _, model = spec.partition(":")
    if kind == "gemini":
        from engine.llm.gemini import GeminiProvider

        assert settings.gemini_api_key is not None  # checked when settings load
        return GeminiProvider(model, settings.gemini_api_key.get_secret_value(),
                              base_url=str(settings.gemini_base_url) if settings.gemini_base_url else None,
                              timeout=settings.llm_timeout)
    if kind == "openai":
        from engine.llm.openai_compat import OpenAICompatibleProvider

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return OpenAICompatibleProvider(model, str(settings.openai_base_url), key, timeout=settings.llm_timeout)
    return ExtractiveProvider()


def build_chain(settings: Settings, first: list[str] | tuple[str, ...] = ()) -> ProviderChain:
    """The configured providers, after ``first`` (an activated tuned model and its fallback), without repeats."""
    specs = list(dict.fromkeys([*first, *settings.providers]))
    providers = [build_provider(spec, settings) for spec in specs if not spec.startswith("extractive")]
    return ProviderChain(providers, RetryPolicy(attempts=settings.llm_retries))
