"""What a tuning job may ask of each provider, checked once when the job is created (the API and
the CLI both come through here) and again before it is submitted.

The alias names the model at the provider, so it must fit there: Gemini's ``displayName`` holds
40 characters, OpenAI's ``suffix`` 64; neither may hold control characters. The hyperparameters
are the finetunings API's ``n_epochs``, ``batch_size`` and ``learning_rate_multiplier``, plus
Gemini's own names (``epoch_count``, and ``learning_rate``: an absolute rate, which only Gemini
takes; OpenAI scales its own default by a multiplier and is never sent an absolute rate as one).
They are kept under those canonical names, and each tuner maps them to its provider's fields. OpenAI
also takes ``"auto"`` for each of its three (its default: chosen from the training set), passed on as it is.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Any

from engine.llm.registry import tunable_kinds, tuning_backend
from engine.tuning.errors import TuningError

INT32_MAX = 2**31 - 1


class TuningRequestError(TuningError):
    """The job can't be asked of that provider; the message says why."""


@dataclass(frozen=True)
class Parameter:
    whole: bool  # a whole number from 1 (to INT32_MAX, protobuf's int32), or else any finite number above 0
    meaning: str


PARAMETERS = {
    "n_epochs": Parameter(True, "passes over the training set"),
    "batch_size": Parameter(True, "examples per step"),
    "learning_rate": Parameter(False, "the absolute learning rate, Gemini only"),
    "learning_rate_multiplier": Parameter(False, "a multiple of the provider's default learning rate"),
}
# Each provider's accepted names (-> the canonical one), its caps, whether it takes "auto", and what its alias
# becomes: declared by its tuning backend in the provider registry (engine.llm.registry.TuningBackend).
MODEL_NAME_MAX = 200


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text)


def has_lone_surrogates(value: object) -> bool:
    """Whether ``value`` (a JSON value: text, or lists and objects of them) holds half of a UTF-16 pair.

    JSON's ``\\ud800`` escapes decode to such halves; they are no characters, can't be written as UTF-8, and
    so can't be stored or sent to a provider."""
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(has_lone_surrogates(k) or has_lone_surrogates(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogates(item) for item in value)
    return False


def check_text(value: object, what: str) -> None:
    if has_lone_surrogates(value):
        raise TuningRequestError(f"{what} holds an unpaired UTF-16 surrogate (a \\ud800-\\udfff escape): "
                                 "that is no character")


def check_alias(alias: object, provider: str) -> str:
    if not isinstance(alias, str) or not alias.strip():
        raise TuningRequestError("'alias' must be a non-empty name")
    check_text(alias, "'alias'")
    alias = alias.strip()
    if _has_control_characters(alias):
        raise TuningRequestError("'alias' must not contain control characters (line breaks, tabs, …)")
    backend = tuning_backend(provider)
    if len(alias) > backend.alias_max:
        raise TuningRequestError(f"'alias' becomes {backend.alias_field}, which holds at most {backend.alias_max} "
                                 f"characters; this one has {len(alias)}")
    return alias


def check_parameters(parameters: object, provider: str) -> dict[str, Any]:
    """The hyperparameters under their canonical names, or the reason they can't be sent to ``provider``."""
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise TuningRequestError("'model_parameters' must be an object")
    backend = tuning_backend(provider)
    accepted = backend.parameters
    canonical: dict[str, Any] = {}
    for name, value in parameters.items():
        if name not in accepted:
            if name == "learning_rate":
                raise TuningRequestError(f"'learning_rate' can't be sent to {provider}: it takes learning_rate_multiplier, "
                                         "a multiple of its own default rate, never an absolute rate")
            raise TuningRequestError(f"unknown model parameter '{name}' for {provider}: it takes "
                                     f"{', '.join(sorted(accepted))}")
        target = accepted[name]
        if target in canonical:
            raise TuningRequestError(f"'{name}' and another name for '{target}' were both given: give one, not both")
        rule = PARAMETERS[target]
        if value == "auto":  # OpenAI's own word for "choose it from the training set"
            if not backend.takes_auto:
                raise TuningRequestError(f"'{name}' can't be \"auto\" for {provider}: give a number, or leave it out "
                                         f"for {provider}'s default")
            canonical[target] = "auto"
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if rule.whole:
            high = backend.highs.get(target, INT32_MAX)
            if not (number and float(value).is_integer() and 1 <= value <= high):
                raise TuningRequestError(f"'{name}' ({rule.meaning}) must be a whole number from 1 to {high}")
            canonical[target] = int(value)
        else:
            if not (number and value > 0):
                raise TuningRequestError(f"'{name}' ({rule.meaning}) must be a number above 0")
            canonical[target] = float(value)
    if "learning_rate" in canonical and "learning_rate_multiplier" in canonical:
        raise TuningRequestError("give 'learning_rate' or 'learning_rate_multiplier', not both (Gemini takes one of them)")
    return canonical


def check_request(alias: object, base_llm: object) -> tuple[str, dict[str, Any]]:
    """The alias and ``base_llm`` (model_provider, model_name, model_parameters) as a job keeps them."""
    if not isinstance(base_llm, dict):
        raise TuningRequestError("'base_llm' must be an object with model_provider, model_name and model_parameters")
    check_text(base_llm, "'base_llm'")
    provider = base_llm.get("model_provider")
    if provider not in (kinds := tunable_kinds()):
        raise TuningRequestError(f"model_provider must be one of {', '.join(kinds)}")
    name = base_llm.get("model_name")
    if not isinstance(name, str) or not name.strip() or len(name) > MODEL_NAME_MAX or _has_control_characters(name):
        raise TuningRequestError(f"'base_llm.model_name' must be a model name of 1-{MODEL_NAME_MAX} printable characters")
    parameters = check_parameters(base_llm.get("model_parameters"), provider)
    return check_alias(alias, provider), {"model_provider": provider, "model_name": name.strip(),
                                          "model_parameters": parameters}
