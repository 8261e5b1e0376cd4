"""Gemini through the official ``google-genai`` SDK (async client).

Any model name works, tuned ones included (``tunedModels/<id>``). Finish reasons and safety
blocks become a plain ``finish_reason``; HTTP failures become :class:`ProviderError` with
``retryable`` and the server's retry hint (``Retry-After`` or the RetryInfo ``retryDelay``).
The SDK's own retries are off: :mod:`engine.llm.retry` owns retrying, so the fallback chain
can move on when a model stays down.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, AsyncIterator, Callable

from engine.llm.base import Generation, GenerationRequest, ProviderError, StreamEvent, estimate_tokens
from engine.llm.retry import parse_retry_after

if TYPE_CHECKING:
    import aiohttp
    from google.genai import types as genai_types

    from engine.config import Settings
    from engine.llm.registry import ProviderKind
    from engine.tuning.dataset import Example
    from engine.tuning.providers import GeminiTuner

RETRYABLE = {408, 429, 500, 502, 503, 504}
BLOCKING_FINISH = {"SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "RECITATION", "IMAGE_SAFETY", "MODEL_ARMOR"}
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/"


def _retry_delay(details: object) -> float | None:
    error = details.get("error", {}) if isinstance(details, dict) else {}
    for item in error.get("details", []) or []:
        if isinstance(item, dict) and "retryDelay" in item:
            return parse_retry_after(str(item["retryDelay"]))
    return None


class GeminiProvider:
    def __init__(self, model: str, api_key: str, *, base_url: str | None = None, timeout: float = 30.0,
                 context_window: int = 1_000_000) -> None:
        from google import genai
        from google.genai import types

        self.model = model
        self.name = f"gemini:{model}"
        self.context_window = context_window
        self.timeout = timeout
        self._types = types
        self._client = genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=base_url or DEFAULT_BASE_URL, api_version="v1beta", timeout=int(timeout * 1000),
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    def _config(self, request: GenerationRequest) -> genai_types.GenerateContentConfig:
        return self._types.GenerateContentConfig(
            system_instruction=request.system,
            max_output_tokens=request.max_output_tokens,
            temperature=request.temperature,
        )

    def _error(self, error: Exception) -> ProviderError:
        from google.genai import errors

        if isinstance(error, errors.APIError):
            response = getattr(error, "response", None)
            headers = getattr(response, "headers", None) or {}
            retry_after = parse_retry_after(headers.get("Retry-After")) if hasattr(headers, "get") else None
            retry_after = retry_after if retry_after is not None else _retry_delay(error.details)
            return ProviderError(error.message or str(error), provider=self.name, status=error.code,
                                 retryable=error.code in RETRYABLE, retry_after=retry_after)
        if isinstance(error, (asyncio.TimeoutError, TimeoutError)):
            return ProviderError(f"no answer within {self.timeout:g} s", provider=self.name, retryable=True)
        return ProviderError(f"{type(error).__name__}: {error}", provider=self.name, retryable=True)

    def _generation(self, response: genai_types.GenerateContentResponse, text: str | None = None) -> Generation:
        usage = response.usage_metadata
        prompt_tokens = usage.prompt_token_count if usage else None
        output_tokens = usage.candidates_token_count if usage else None
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason:
            reason = str(getattr(feedback.block_reason, "value", feedback.block_reason))
            return Generation("", self.name, "blocked", prompt_tokens, output_tokens, blocked_reason=reason)
        candidate = response.candidates[0] if response.candidates else None
        finish = str(getattr(candidate.finish_reason, "value", candidate.finish_reason) or "STOP") if candidate else "OTHER"
        if finish in BLOCKING_FINISH:
            return Generation("", self.name, "blocked", prompt_tokens, output_tokens, blocked_reason=finish)
        if text is None:
            parts = candidate.content.parts if candidate and candidate.content and candidate.content.parts else []
            text = "".join(p.text or "" for p in parts if not getattr(p, "thought", False))
        mapped = {"STOP": "stop", "MAX_TOKENS": "max_tokens"}.get(finish, "other")
        return Generation(text, self.name, mapped, prompt_tokens, output_tokens)

    async def generate(self, request: GenerationRequest) -> Generation:
        try:
            response = await asyncio.wait_for(
                self._client.aio.models.generate_content(model=self.model, contents=request.prompt, config=self._config(request)),
                self.timeout,
            )
        except Exception as error:
            raise self._error(error) from None
        return self._generation(response)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        pieces: list[str] = []
        last = None
        try:
            stream = await asyncio.wait_for(
                self._client.aio.models.generate_content_stream(model=self.model, contents=request.prompt, config=self._config(request)),
                self.timeout,
            )
            async for response in stream:
                last = response
                chunk = self._generation(response)
                if chunk.blocked:
                    yield StreamEvent(done=True, generation=chunk)
                    return
                if chunk.text:
                    pieces.append(chunk.text)
                    yield StreamEvent(text=chunk.text)
        except Exception as error:
            raise self._error(error) from None
        if last is None:
            raise ProviderError("the stream ended without a response", provider=self.name, retryable=True)
        yield StreamEvent(done=True, generation=self._generation(last, text="".join(pieces)))

    async def count_tokens(self, text: str) -> int:
        try:
            result = await asyncio.wait_for(self._client.aio.models.count_tokens(model=self.model, contents=text), self.timeout)
            return int(result.total_tokens or 0)
        except Exception as error:
            raise self._error(error) from None

    def estimate_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def aclose(self) -> None:
        close = getattr(self._client.aio, "aclose", None)
        if close:
            await close()


def _build(model: str, settings: Settings) -> GeminiProvider:
    assert settings.answer.gemini_api_key is not None  # checked when settings load
    return GeminiProvider(model, settings.answer.gemini_api_key.get_secret_value(),
                          base_url=str(settings.answer.gemini_base_url) if settings.answer.gemini_base_url else None,
                          timeout=settings.answer.llm_timeout)


def _tuner(settings: Settings, session: aiohttp.ClientSession) -> GeminiTuner:
    from engine.tuning.providers import GeminiTuner

    base = settings.tuning.gemini_tuning_base_url or settings.answer.gemini_base_url or DEFAULT_BASE_URL
    return GeminiTuner(str(base), session, grantee=settings.tuning.tuned_model_grantee)


def training_rows(examples: list[Example]) -> list[dict[str, str]]:
    """Gemini tuning takes one text input: the system instruction goes in front."""
    return [{"text_input": f"{e.system}\n\n{e.input}", "output": e.output} for e in examples]


def register_providers(register: Callable[[ProviderKind], None]) -> None:
    from engine.llm.registry import Limits, ProviderKind, TuningBackend

    register(ProviderKind(
        "gemini", "Gemini", _build, required=("gemini_api_key",),
        settings=("gemini_api_key", "gemini_base_url", "llm_timeout", "gemini_tuning_base_url", "tuned_model_grantee"),
        # Gemini tuning: at least 20 examples, inputs up to 40,000 and outputs up to 5,000 characters.
        tuning=TuningBackend(Limits(20, 40_000, 5_000), training_rows, _tuner, alias_max=40,
                             alias_field="Gemini's display name",
                             parameters={"n_epochs": "n_epochs", "epoch_count": "n_epochs", "batch_size": "batch_size",
                                         "learning_rate": "learning_rate",
                                         "learning_rate_multiplier": "learning_rate_multiplier"}),
    ))
