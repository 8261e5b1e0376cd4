"""Any OpenAI-compatible chat-completions server over aiohttp: Groq, Ollama, vLLM, llama.cpp, OpenAI."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

import aiohttp

from engine.llm.base import Generation, GenerationRequest, ProviderError, StreamEvent, estimate_tokens
from engine.llm.retry import parse_retry_after

if TYPE_CHECKING:
    from engine.config import Settings
    from engine.llm.registry import ProviderKind
    from engine.tuning.dataset import Example
    from engine.tuning.providers import OpenAITuner

RETRYABLE = {408, 409, 429, 500, 502, 503, 504}
FINISH = {"stop": "stop", "length": "max_tokens", "content_filter": "blocked"}


class OpenAICompatibleProvider:
    def __init__(self, model: str, base_url: str, api_key: str | None = None, *, timeout: float = 30.0,
                 context_window: int = 8192) -> None:
        self.model = model
        self.name = f"openai:{model}"
        self.base_url = base_url.rstrip("/")
        self.context_window = context_window
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    def _body(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": request.system}, {"role": "user", "content": request.prompt}],
            "max_tokens": request.max_output_tokens,
            "temperature": request.temperature,
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    async def _post(self, request: GenerationRequest, stream: bool) -> aiohttp.ClientResponse:
        try:
            response = await self._client().post(f"{self.base_url}/chat/completions", json=self._body(request, stream))
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            message = f"no answer within {self.timeout:g} s" if isinstance(error, asyncio.TimeoutError) else str(error)
            raise ProviderError(message, provider=self.name, retryable=True) from None
        if response.status >= 400:
            text = (await response.text())[:300]
            response.release()
            raise ProviderError(text or response.reason or "error", provider=self.name, status=response.status,
                                retryable=response.status in RETRYABLE,
                                retry_after=parse_retry_after(response.headers.get("Retry-After")))
        return response

    async def generate(self, request: GenerationRequest) -> Generation:
        response = await self._post(request, stream=False)
        try:
            data = await response.json(content_type=None)
            choice = data["choices"][0]
            usage = data.get("usage") or {}
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError, IndexError, TypeError) as error:
            raise ProviderError(f"malformed response: {error}", provider=self.name, retryable=True) from None
        finish = FINISH.get(choice.get("finish_reason") or "stop", "other")
        text = (choice.get("message") or {}).get("content") or ""
        return Generation(text if finish != "blocked" else "", self.name, finish, usage.get("prompt_tokens"),
                          usage.get("completion_tokens"), blocked_reason="content_filter" if finish == "blocked" else None)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        response = await self._post(request, stream=True)
        pieces: list[str] = []
        finish = "stop"
        usage: dict[str, Any] = {}
        try:
            async for raw in response.content:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                data = json.loads(payload)
                usage = data.get("usage") or usage
                for choice in data.get("choices") or []:
                    if choice.get("finish_reason"):
                        finish = FINISH.get(choice["finish_reason"], "other")
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        pieces.append(piece)
                        yield StreamEvent(text=piece)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise ProviderError(f"stream broke: {error or type(error).__name__}", provider=self.name, retryable=True) from None
        finally:
            response.release()
        yield StreamEvent(done=True, generation=Generation("".join(pieces), self.name, finish, usage.get("prompt_tokens"),
                                                           usage.get("completion_tokens")))

    async def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)  # the chat-completions API has no token-counting endpoint

    def estimate_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _build(model: str, settings: Settings) -> OpenAICompatibleProvider:
    key = settings.answer.openai_api_key.get_secret_value() if settings.answer.openai_api_key else None
    return OpenAICompatibleProvider(model, str(settings.answer.openai_base_url), key,
                                    timeout=settings.answer.llm_timeout)


def _tuner(settings: Settings, session: aiohttp.ClientSession) -> OpenAITuner:
    from engine.tuning.providers import OpenAITuner

    key = settings.answer.openai_api_key.get_secret_value() if settings.answer.openai_api_key else None
    return OpenAITuner(str(settings.answer.openai_base_url), key, session)


def training_rows(examples: list[Example]) -> list[dict[str, Any]]:
    """OpenAI's chat fine-tuning format: the system, user and assistant messages of each example."""
    return [{"messages": [{"role": "system", "content": e.system}, {"role": "user", "content": e.input},
                          {"role": "assistant", "content": e.output}]} for e in examples]


def register_providers(register: Callable[[ProviderKind], None]) -> None:
    from engine.llm.registry import Limits, ProviderKind, TuningBackend

    register(ProviderKind(
        "openai", "OpenAI-compatible", _build,  # a local server (Ollama, llama.cpp) may need no key
        settings=("openai_api_key", "openai_base_url", "llm_timeout"),
        # OpenAI fine-tuning: at least 10 examples; a 65,536-token context (about 4 characters a token).
        tuning=TuningBackend(Limits(10, 240_000, 16_000), training_rows, _tuner, alias_max=64,
                             alias_field="OpenAI's model-name suffix",
                             parameters={"n_epochs": "n_epochs", "batch_size": "batch_size",
                                         "learning_rate_multiplier": "learning_rate_multiplier"},
                             # OpenAI's documented range: "any number between 1 and 50 epochs"; "auto" is its default
                             highs={"n_epochs": 50}, takes_auto=True),
    ))
