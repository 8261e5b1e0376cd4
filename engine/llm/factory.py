"""Building the provider chain that the settings describe."""

from __future__ import annotations

import logging

from engine.config import Settings
from engine.llm.base import Provider
from engine.llm.chain import ProviderChain
from engine.llm.extractive import ExtractiveProvider
from engine.llm.retry import RetryPolicy

log = logging.getLogger(__name__)


def missing_key(spec: str, settings: Settings) -> str | None:
    """The setting this process lacks to call ``spec``, if any (an OpenAI-compatible server may need no key)."""
    if spec.partition(":")[0] == "gemini" and settings.gemini_api_key is None:
        return "FIRSTREPLY_GEMINI_API_KEY"
    return None


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
    """The configured providers, after ``first`` (an activated tuned model and its fallback), without repeats; a
    model this process has no key for (activated by another process) is left out, with one warning."""
    specs = list(dict.fromkeys([*first, *settings.providers]))
    usable = []
    for spec in specs:
        if spec.startswith("extractive"):
            continue
        if (setting := missing_key(spec, settings)) is not None:  # activated elsewhere, by a process that had the key
            log.warning("%s is activated but this process lacks %s: it answers with the rest of the chain (%s)",
                        spec, setting, ", ".join(s for s in specs if s != spec) or "extractive")
            continue
        usable.append(spec)
    providers = [build_provider(spec, settings) for spec in usable]
    return ProviderChain(providers, RetryPolicy(attempts=settings.llm_retries))
