"""The provider registry: a provider is one module, and everything that names provider kinds reads it.

A toy provider registered here, through the same hook the built-in modules use, has to show up in the
fallback chain, in settings validation (and its messages), in the OpenAPI enums, in the tuning request and
dataset checks, in the engine's tuners and in the CLI's choices, with no other file edited.
"""

import logging
import types

import jsonschema
import pytest
from click.testing import CliRunner

from engine.config import FLAT, ConfigError, Settings, load_settings
from engine.llm import registry
from engine.llm.base import Generation, GenerationRequest, StreamEvent, estimate_tokens
from engine.llm.extractive import ExtractiveProvider
from engine.llm.factory import build_chain


class ToyProvider:
    """Answers every question with the same words."""

    def __init__(self, model: str, greeting: str) -> None:
        self.name = f"toy:{model}"
        self.context_window = 4096
        self.greeting = greeting

    async def generate(self, request: GenerationRequest) -> Generation:
        return Generation(f"{self.greeting} [1]", self.name)

    async def stream(self, request: GenerationRequest):
        yield StreamEvent(done=True, generation=await self.generate(request))

    async def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def estimate_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def aclose(self) -> None:
        pass


class ToyTuner:
    name = "toy"
    submitted_state = "running"
    grantee = None

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url


def _register_providers(register) -> None:
    """What the toy's own module would hold: its one declaration."""
    register(registry.ProviderKind(
        "toy", "Toy", lambda model, settings: ToyProvider(model, "hello from the toy"),
        settings=("openai_api_key", "openai_base_url"), required=("openai_api_key",),
        tuning=registry.TuningBackend(
            registry.Limits(3, 1000, 500), lambda examples: [{"q": e.input, "a": e.output} for e in examples],
            lambda settings, session: ToyTuner(str(settings.openai_base_url)), alias_max=12,
            alias_field="the toy's nickname", parameters={"n_epochs": "n_epochs", "rounds": "n_epochs"},
            highs={"n_epochs": 7}),
    ))


@pytest.fixture
def toy():
    registry.load_module(types.SimpleNamespace(register_providers=_register_providers))
    yield registry.get("toy")
    registry.unregister("toy")


def _settings(**values) -> Settings:
    return load_settings(_env_file=None, **values)


async def test_a_registered_provider_answers_in_the_chain_before_the_extractive_answerer(toy):
    chain = build_chain(_settings(providers=["toy:small"], openai_api_key="k"))
    try:
        assert [type(p) for p in chain.providers] == [ToyProvider, ExtractiveProvider]
        result = await chain.generate(GenerationRequest(system="s", prompt="p", question="q"))
        assert (result.provider, result.generation.text) == ("toy:small", "hello from the toy [1]")
    finally:
        await chain.aclose()


def test_settings_validation_knows_a_registered_provider_and_words_its_messages(toy):
    assert _settings(providers=["toy:small"], openai_api_key="k").providers == ["toy:small"]
    with pytest.raises(ConfigError) as raised:
        _settings(providers=["toy"])
    assert str(raised.value) == ("bad setting FIRSTREPLY_PROVIDERS: 'toy' is not 'gemini:<model>', 'openai:<model>', "
                                 "'extractive' or 'toy:<model>'")
    with pytest.raises(ConfigError) as raised:
        _settings(providers=["toy:small"])
    assert str(raised.value) == ("bad setting FIRSTREPLY_OPENAI_API_KEY is required when FIRSTREPLY_PROVIDERS names a "
                                 "toy model")
    with pytest.raises(ConfigError, match="is not 'gemini:<model>', 'openai:<model>' or 'toy:<model>'"):
        _settings(tuning_judge="extractive")


def test_the_openapi_document_lists_a_registered_tunable_provider(toy):
    from engine.api.openapi import document

    doc = document()
    request = doc["components"]["schemas"]["FineTuningRequest"]
    assert request["properties"]["base_llm"]["properties"]["model_provider"]["enum"] == ["gemini", "openai", "toy"]
    export = doc["paths"]["/api/v1/finetunings/training-set"]["get"]["parameters"]
    assert {"enum": ["gemini", "openai", "toy"]} in [p["schema"] for p in export if p["name"] == "provider"]
    validator = jsonschema.Draft202012Validator(request)
    assert validator.is_valid({"alias": "short", "base_llm": {"model_provider": "toy", "model_name": "m",
                                                              "model_parameters": {"rounds": 7}}})
    assert not validator.is_valid({"alias": "a name too long", "base_llm": {"model_provider": "toy", "model_name": "m"}})
    assert not validator.is_valid({"alias": "short", "base_llm": {"model_provider": "toy", "model_name": "m",
                                                                  "model_parameters": {"rounds": 8}}})
    assert not validator.is_valid({"alias": "short", "base_llm": {"model_provider": "toy", "model_name": "m",
                                                                  "model_parameters": {"batch_size": 2}}})
    registry.unregister("toy")
    assert "toy" not in str(document())


def test_tuning_requests_datasets_and_tuners_come_from_a_registered_backend(toy):
    from engine.tuning.dataset import LIMITS, Example, export, validate
    from engine.tuning.request import TuningRequestError, check_request
    from engine.tuning.service import build_tuners

    assert check_request("nick", {"model_provider": "toy", "model_name": "m", "model_parameters": {"rounds": 2}}) == (
        "nick", {"model_provider": "toy", "model_name": "m", "model_parameters": {"n_epochs": 2}})
    with pytest.raises(TuningRequestError, match="'alias' becomes the toy's nickname, which holds at most 12"):
        check_request("a much longer name", {"model_provider": "toy", "model_name": "m"})
    with pytest.raises(TuningRequestError, match="must be a whole number from 1 to 7"):
        check_request("nick", {"model_provider": "toy", "model_name": "m", "model_parameters": {"n_epochs": 8}})
    assert LIMITS["toy"].min_examples == 3 and list(LIMITS) == ["gemini", "openai", "toy"]
    kept, dropped = validate([Example(1, "q", "s", "question", "answer"), Example(2, "q", "s", "x" * 1000, "a")], "toy")
    assert export(kept, "toy") == '{"q": "question", "a": "answer"}\n'
    assert dropped == [{"record_id": 2, "reason": "input longer than 1000 characters"}]
    tuners = build_tuners(_settings(openai_api_key="k", openai_base_url="http://127.0.0.1:9/v1"), None)
    assert isinstance(tuners["toy"], ToyTuner) and tuners["toy"].base_url == "http://127.0.0.1:9/v1"


def test_calling_a_model_without_its_key_names_the_setting_and_the_provider(toy):
    from engine.tuning.errors import TuningError
    from engine.tuning.service import require_credentials

    settings = _settings()
    with pytest.raises(TuningError, match="^FIRSTREPLY_GEMINI_API_KEY is required to call a Gemini model$"):
        require_credentials("gemini:tunedModels/x", settings)
    with pytest.raises(TuningError, match="^FIRSTREPLY_OPENAI_API_KEY is required to call a Toy model$"):
        require_credentials("toy:tuned", settings)
    require_credentials("openai:gpt-4o-mini", settings)  # an OpenAI-compatible server may need no key


def test_the_cli_offers_a_registered_tunable_provider(toy):
    from firstreply.cli import cli

    result = CliRunner().invoke(cli, ["tune", "export", "--help"])
    assert "[gemini|openai|toy]" in result.output


def test_an_activated_model_of_a_kind_this_process_lacks_is_left_out(caplog):
    with caplog.at_level(logging.WARNING, logger="engine.llm.factory"):
        chain = build_chain(_settings(), first=["plugin:tuned-elsewhere"])
    assert [type(p) for p in chain.providers] == [ExtractiveProvider]
    assert "no provider here calls 'plugin' models" in caplog.text


def test_the_built_in_providers_register_like_plugins_and_name_real_settings():
    kinds = registry.kinds()
    assert list(kinds)[:3] == ["gemini", "openai", "extractive"]
    assert registry.tunable_kinds()[:2] == ["gemini", "openai"]
    for kind in kinds.values():
        assert set(kind.required) <= set(kind.settings)
        assert set(kind.settings) <= set(FLAT), kind.kind
    assert kinds["extractive"].last_resort and not kinds["extractive"].takes_model
