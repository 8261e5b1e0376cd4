"""The provider registry: every kind of model firstreply can answer with, declared once by its own module.

A provider module (``engine/llm/gemini.py``, ``engine/llm/openai_compat.py``, ``engine/llm/extractive.py``)
defines ``register_providers(register)`` and calls ``register`` with a :class:`ProviderKind`: its kind (the
part of ``"gemini:<model>"`` before the colon), the settings it reads and those it can't work without, how
to build it for a model, and, where it has one, its :class:`TuningBackend` (the tuning service and the
dataset format it trains on). Everything that used to spell the kinds out reads them here instead: config
validation and its messages, the fallback chain's factory, the engine's tuners, the CLI's ``--provider``
choices, the OpenAPI enums, the tuning dataset and request checks.

Built-in providers register through the same hook a plugin uses, as in simonw/llm: the modules in
:data:`BUILTIN` first, then any module an installed distribution names under the ``firstreply.providers``
entry-point group. They are loaded on first use, not at import, so reading the settings or ``--help`` costs
no model library. Adding a provider is one module.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.config import Settings
    from engine.llm.base import Provider

log = logging.getLogger(__name__)

ENV_PREFIX = "FIRSTREPLY_"  # engine.config.ENV_PREFIX (config imports this module, so not imported from there)
#: The built-in provider modules, in the order their kinds are listed in messages and choices.
BUILTIN = ("engine.llm.gemini", "engine.llm.openai_compat", "engine.llm.extractive")
ENTRY_POINT_GROUP = "firstreply.providers"


@dataclass(frozen=True)
class Limits:
    """What a provider's tuning accepts: how many examples at least, and how long each may be."""

    min_examples: int
    max_input_chars: int
    max_output_chars: int


@dataclass(frozen=True, eq=False)  # compared and hashed by identity (the OpenAPI cache)
class TuningBackend:
    """How a provider tunes a model: its service, the shape of its training examples, what a job may ask.

    ``tuner(settings, session)`` builds the service (``engine.tuning.providers``); ``rows(examples)`` turns
    ``engine.tuning.dataset.Example``s into the provider's own training rows (its export format);
    ``parameters`` maps each hyperparameter name the provider accepts to the canonical one
    (``engine.tuning.request``), ``highs`` caps a canonical one below int32, ``takes_auto`` says whether
    ``"auto"`` may stand for a number; the alias becomes ``alias_field``, which holds ``alias_max`` characters."""

    limits: Limits
    rows: Callable[[list[Any]], list[dict[str, Any]]]
    tuner: Callable[[Settings, Any], Any]
    alias_max: int
    alias_field: str
    parameters: Mapping[str, str]
    highs: Mapping[str, int] = field(default_factory=dict)
    takes_auto: bool = False


@dataclass(frozen=True, eq=False)  # compared and hashed by identity (the OpenAPI cache)
class ProviderKind:
    """One kind of provider as its module declares it.

    ``build(model, settings)`` makes the provider for one model (``model`` is empty for a kind that takes
    none). ``settings`` are the :class:`~engine.config.Settings` fields it reads; ``required`` those it can't
    call a model without (validation names the first one missing, as ``FIRSTREPLY_<NAME>``). A ``last_resort``
    kind (the offline extractive answerer) ends every fallback chain on its own, so it is never built from
    the configured list."""

    kind: str
    title: str  # as a sentence names it: "a Gemini model"
    build: Callable[[str, Settings], Provider]
    takes_model: bool = True
    settings: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    tuning: TuningBackend | None = None
    last_resort: bool = False

    @property
    def form(self) -> str:
        """How a spec of this kind is written: ``'gemini:<model>'``, or ``'extractive'``."""
        return f"'{self.kind}:<model>'" if self.takes_model else f"'{self.kind}'"


_kinds: dict[str, ProviderKind] = {}
_loaded = False
_lock = threading.RLock()


def register(kind: ProviderKind) -> None:
    """The hook every provider module is handed: add (or replace) one kind."""
    with _lock:
        _kinds[kind.kind] = kind


def unregister(name: str) -> None:
    """Take a kind out again (a test's toy provider)."""
    with _lock:
        _kinds.pop(name, None)


def load_module(module: Any) -> None:
    """Let a provider module (or anything with ``register_providers(register)``) register its kinds."""
    module.register_providers(register)


def _entry_point_modules() -> Iterator[Any]:
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            yield entry.load()
        except Exception:  # a broken plugin must not stop the engine: the built-in providers still answer
            log.exception("the provider plugin %s could not be loaded", entry.value)


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        for name in BUILTIN:
            load_module(importlib.import_module(name))
        for module in _entry_point_modules():
            load_module(module)
        _loaded = True


def kinds() -> dict[str, ProviderKind]:
    """Every registered kind by name, built-ins first, in registration order."""
    _ensure_loaded()
    return dict(_kinds)


def get(name: str) -> ProviderKind | None:
    return kinds().get(name)


def kind_of(spec: str) -> ProviderKind | None:
    """The kind a spec such as ``"gemini:tunedModels/x"`` names, or None for an unknown one."""
    return get(spec.partition(":")[0])


def _one_of(forms: list[str]) -> str:
    return forms[0] if len(forms) == 1 else f"{', '.join(forms[:-1])} or {forms[-1]}"


def check_spec(spec: str, *, models_only: bool = False) -> None:
    """Raise ValueError (worded for the settings) unless ``spec`` names a registered kind and, where the kind
    takes one, a model; ``models_only`` refuses a kind that takes no model (a judge must be a model)."""
    known = [k for k in kinds().values() if k.takes_model or not models_only]
    kind, _, model = spec.partition(":")
    found = next((k for k in known if k.kind == kind), None)
    if found is None or (found.takes_model and not model):
        raise ValueError(f"{spec!r} is not {_one_of([k.form for k in known])}")


def missing_setting(spec: str, settings: Settings) -> str | None:
    """The setting (as ``FIRSTREPLY_<NAME>``) this process lacks to call ``spec``, if any."""
    found = kind_of(spec)
    for name in found.required if found else ():
        if getattr(settings, name) is None:
            return f"{ENV_PREFIX}{name.upper()}"
    return None


def build(spec: str, settings: Settings) -> Provider:
    """The provider for one spec; an unknown kind is a ValueError (settings validation refuses it first)."""
    found = kind_of(spec)
    if found is None:
        raise ValueError(f"no provider is registered for {spec!r}")
    return found.build(spec.partition(":")[2], settings)


def tuning_backends() -> dict[str, TuningBackend]:
    """The kinds that can tune a model, with their tuning backends."""
    return {name: k.tuning for name, k in kinds().items() if k.tuning is not None}


def tunable_kinds() -> list[str]:
    return list(tuning_backends())


def tuning_backend(name: str) -> TuningBackend:
    """The tuning backend of ``name``; KeyError when it has none."""
    backend = tuning_backends().get(name)
    if backend is None:
        raise KeyError(name)
    return backend


class TuningLimits(Mapping[str, Limits]):
    """Each tunable kind's :class:`Limits`, read from the registry whenever it is looked at."""

    def __getitem__(self, name: str) -> Limits:
        return tuning_backend(name).limits

    def __iter__(self) -> Iterator[str]:
        return iter(tunable_kinds())

    def __len__(self) -> int:
        return len(tunable_kinds())
