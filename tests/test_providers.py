"""The real google-genai client and the aiohttp OpenAI-compatible client against loopback fakes."""


import pytest
from fakes import gemini, openai
from fakes.server import serve

from engine.llm.base import ContextPassage, GenerationRequest, ProviderError
from engine.llm.chain import ProviderChain
from engine.llm.gemini import GeminiProvider
from engine.llm.openai_compat import OpenAICompatibleProvider
from engine.llm.retry import RetryPolicy

REQUEST = GenerationRequest(
    system="Answer from the passages.", prompt="[1] Zoom with scene.zoom(2).\nQuestion: how do I zoom?",
    question="how do I zoom?", context=(ContextPassage(1, "Camera › Zooming", "https://x.test/c#L1", "Zoom with scene.zoom(2).", "c.rst"),),
    max_output_tokens=256, temperature=0.1,
)


@pytest.fixture
async def fake_openai():
    fake = openai.FakeOpenAI()
    async with serve(fake.app()) as url:
        fake.url = url + "/v1"
        yield fake


def gemini_provider(fake, model="gemini-2.5-flash", timeout=5.0, key=gemini.API_KEY):
    return GeminiProvider(model, key, base_url=fake.url, timeout=timeout)


async def test_gemini_generate_sends_system_instruction_and_config(fake_gemini):
    provider = gemini_provider(fake_gemini)
    generation = await provider.generate(REQUEST)
    await provider.aclose()
    assert generation.text == "Zoom with `scene.zoom(2)` [1]."
    assert generation.finish_reason == "stop"
    assert (generation.prompt_tokens, generation.output_tokens) == (42, 7)
    sent = fake_gemini.requests[0]
    assert sent["resource"] == "models/gemini-2.5-flash" and sent["method"] == "generateContent"
    assert sent["json"]["systemInstruction"]["parts"][0]["text"] == "Answer from the passages."
    assert sent["json"]["generationConfig"] == {"maxOutputTokens": 256, "temperature": 0.1}
    assert sent["json"]["contents"][0]["parts"][0]["text"].startswith("[1] Zoom")


async def test_gemini_tuned_model_names_reach_tunedmodels(fake_gemini):
    provider = gemini_provider(fake_gemini, model="tunedModels/firstreply-abc123")
    await provider.generate(REQUEST)
    assert fake_gemini.requests[0]["resource"] == "tunedModels/firstreply-abc123"
    assert provider.name == "gemini:tunedModels/firstreply-abc123"


async def test_gemini_streams_server_sent_events(fake_gemini):
    fake_gemini.default = gemini.Reply(text="Use scene.zoom(2) to zoom in [1].", chunks=4)
    provider = gemini_provider(fake_gemini)
    events = [e async for e in provider.stream(REQUEST)]
    assert len([e for e in events if e.text]) >= 3
    assert "".join(e.text for e in events) == "Use scene.zoom(2) to zoom in [1]."
    assert events[-1].done and events[-1].generation.output_tokens == 7
    assert fake_gemini.requests[0]["method"] == "streamGenerateContent" and fake_gemini.requests[0]["query"] == {"alt": "sse"}


async def test_gemini_count_tokens(fake_gemini):
    assert await gemini_provider(fake_gemini).count_tokens("one two three four") == 4


@pytest.mark.parametrize(("reply", "expected"), [
    (gemini.Reply(block_reason="SAFETY"), "SAFETY"),
    (gemini.Reply(finish_reason="RECITATION"), "RECITATION"),
])
async def test_gemini_safety_blocks_are_a_clear_outcome(fake_gemini, reply, expected):
    fake_gemini.script = [reply]
    generation = await gemini_provider(fake_gemini).generate(REQUEST)
    assert generation.blocked and generation.blocked_reason == expected and generation.text == ""


async def test_gemini_max_tokens_is_reported(fake_gemini):
    fake_gemini.script = [gemini.Reply(text="cut sh", finish_reason="MAX_TOKENS")]
    assert (await gemini_provider(fake_gemini).generate(REQUEST)).finish_reason == "max_tokens"


async def test_gemini_429_carries_the_retry_hint(fake_gemini):
    fake_gemini.script = [gemini.Reply(status=429, retry_delay="2s")]
    with pytest.raises(ProviderError) as raised:
        await gemini_provider(fake_gemini).generate(REQUEST)
    assert raised.value.status == 429 and raised.value.retryable and raised.value.retry_after == 2.0


async def test_gemini_bad_key_is_not_retried(fake_gemini):
    with pytest.raises(ProviderError) as raised:
        await gemini_provider(fake_gemini, key="wrong").generate(REQUEST)
    assert raised.value.status == 403 and not raised.value.retryable
    assert "wrong" not in str(raised.value)


async def test_gemini_timeout(fake_gemini):
    fake_gemini.script = [gemini.Reply(delay=2.0)]
    with pytest.raises(ProviderError, match="no answer within 0.3 s") as raised:
        await gemini_provider(fake_gemini, timeout=0.3).generate(REQUEST)
    assert raised.value.retryable


async def test_chain_retries_429_and_500_on_gemini_then_answers(fake_gemini):
    fake_gemini.script = [gemini.Reply(status=429, retry_after=0.05), gemini.Reply(status=500), gemini.Reply(text="ok [1]")]
    chain = ProviderChain([gemini_provider(fake_gemini)], RetryPolicy(attempts=3, base_delay=0.01))
    result = await chain.generate(REQUEST)
    assert result.provider == "gemini:gemini-2.5-flash" and result.generation.text == "ok [1]"
    assert len(fake_gemini.requests) == 3 and result.failures == []


async def test_chain_moves_from_tuned_to_base_to_extractive(fake_gemini):
    fake_gemini.script = [gemini.Reply(status=503)] * 2 + [gemini.Reply(status=500)] * 2
    chain = ProviderChain(
        [gemini_provider(fake_gemini, "tunedModels/t1"), gemini_provider(fake_gemini, "gemini-2.5-flash")],
        RetryPolicy(attempts=2, base_delay=0.01),
    )
    result = await chain.generate(REQUEST)
    assert result.provider == "extractive"
    assert [f.provider for f in result.failures] == ["gemini:tunedModels/t1", "gemini:gemini-2.5-flash"]
    assert "HTTP 503" in result.failures[0].error and "HTTP 500" in result.failures[1].error
    assert "scene.zoom(2)" in result.generation.text


async def test_openai_compatible_generate(fake_openai):
    provider = OpenAICompatibleProvider("llama-3.1-8b", fake_openai.url, openai.API_KEY)
    generation = await provider.generate(REQUEST)
    await provider.aclose()
    assert generation.text == "Use `scene.zoom(2)` [1]." and generation.prompt_tokens == 40
    sent = fake_openai.requests[0]
    assert sent["model"] == "llama-3.1-8b" and sent["max_tokens"] == 256
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]


async def test_openai_compatible_stream(fake_openai):
    fake_openai.default = openai.ChatReply(text="one two three four [1]")
    provider = OpenAICompatibleProvider("m", fake_openai.url, openai.API_KEY)
    events = [e async for e in provider.stream(REQUEST)]
    await provider.aclose()
    assert "".join(e.text for e in events) == "one two three four [1]"
    assert events[-1].generation.output_tokens == 6


@pytest.mark.parametrize(("reply", "status", "retryable", "retry_after"), [
    (openai.ChatReply(status=429, retry_after=3), 429, True, 3.0),
    (openai.ChatReply(status=502), 502, True, None),
    (openai.ChatReply(status=400), 400, False, None),
])
async def test_openai_compatible_errors(fake_openai, reply, status, retryable, retry_after):
    fake_openai.script = [reply]
    provider = OpenAICompatibleProvider("m", fake_openai.url, openai.API_KEY)
    with pytest.raises(ProviderError) as raised:
        await provider.generate(REQUEST)
    await provider.aclose()
    assert (raised.value.status, raised.value.retryable, raised.value.retry_after) == (status, retryable, retry_after)


async def test_openai_compatible_timeout_and_unreachable_server(fake_openai):
    fake_openai.script = [openai.ChatReply(delay=2)]
    slow = OpenAICompatibleProvider("m", fake_openai.url, openai.API_KEY, timeout=0.3)
    with pytest.raises(ProviderError, match="no answer within"):
        await slow.generate(REQUEST)
    await slow.aclose()
    gone = OpenAICompatibleProvider("m", "http://127.0.0.1:9/v1", openai.API_KEY)
    with pytest.raises(ProviderError) as raised:
        await gone.generate(REQUEST)
    await gone.aclose()
    assert raised.value.retryable


async def test_content_filter_is_a_block(fake_openai):
    fake_openai.script = [openai.ChatReply(text="", finish_reason="content_filter")]
    provider = OpenAICompatibleProvider("m", fake_openai.url, openai.API_KEY)
    generation = await provider.generate(REQUEST)
    await provider.aclose()
    assert generation.blocked
