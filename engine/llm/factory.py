"""Building the provider chain that the settings describe, from the kinds in :mod:`engine.llm.registry`."""

from __future__ import annotations

import logging

from engine.config import Settings
from engine.llm import registry
from engine.llm.base import Provider
from engine.llm.chain import ProviderChain
from engine.llm.retry import RetryPolicy

log = logging.getLogger(__name__)


def missing_key(spec: str, settings: Settings) -> str | None:
    """The setting this process lacks to call ``spec``, if any (an OpenAI-compatible server may need no key)."""
    return registry.missing_setting(spec, settings)


def build_provider(spec: str, settings: Settings) -> Provider:
    return registry.build(spec, settings)


def _last_resort(spec: str) -> bool:
    kind = registry.kind_of(spec)
    return kind is not None and kind.last_resort


def build_chain(settings: Settings, first: list[str] | tuple[str, ...] = ()) -> ProviderChain:
    """The configured providers, after ``first`` (an activated tuned model and its fallback), without repeats; a
    model this process has no key or no provider for (activated by another process) is left out, with one warning."""
    specs = list(dict.fromkeys([*first, *settings.answer.providers]))
    usable = []
    for spec in specs:
        if _last_resort(spec):  # the chain ends with the offline answerer on its own
            continue
        if registry.kind_of(spec) is None:  # activated by a process with a provider plugin this one lacks
            log.warning("%s is activated but no provider here calls %r models: it answers with the rest of the chain",
                        spec, spec.partition(":")[0])
            continue
        if (setting := missing_key(spec, settings)) is not None:  # activated elsewhere, by a process that had the key
            log.warning("%s is activated but this process lacks %s: it answers with the rest of the chain (%s)",
                        spec, setting, ", ".join(s for s in specs if s != spec) or "extractive")
            continue
        usable.append(spec)
    providers = [build_provider(spec, settings) for spec in usable]
    return ProviderChain(providers, RetryPolicy(attempts=settings.answer.llm_retries))
