"""The answer pipeline end to end: retrieval, prompt, providers (loopback fakes), log, conversations, votes."""

import pytest
from fakes import gemini
from sqlalchemy import select

from engine.answer.model import Question
from engine.answer.pipeline import ABSTAIN_TEXT, REWRITE_SYSTEM
from engine.store.models import AnswerRecord, Feedback, Turn
from engine.store.repository import UnknownAnswer

CAMERA = "How do I zoom the camera in?"


def with_gemini(fake, **more):
    return dict(providers=["gemini:gemini-2.5-flash"], gemini_api_key=gemini.API_KEY, gemini_base_url=fake.url,
                llm_retries=2, **more)


async def records(engine, model=AnswerRecord):
    async with engine.store.session() as session:
        return list((await session.execute(select(model))).scalars())


async def test_offline_answer_is_cited_and_logged_with_everything_review_needs(make_engine):
    async with make_engine() as engine:
        answer = await engine.answer(Question(CAMERA, channel="discord", user_id="discord:42", request_id="req-1"))
        assert not answer.abstained and answer.model == "extractive"
        assert "scene.zoom(2)" in answer.text
        assert answer.citations[0].url.startswith("https://github.com/org/tinyviz/blob/v0.3.0/docs/guide/camera.rst#L")
        [record] = await records(engine)
    assert record.id == answer.id and record.channel == "discord" and record.request_id == "req-1"
    assert record.question == CAMERA and record.text == answer.text and record.abstained is False
    assert record.user_hash and "42" not in record.user_hash  # pseudonymous
    assert record.sources[0]["path"] == "docs/guide/camera.rst" and record.sources[0]["dense"] > 0.3
    assert record.prompt_tokens > 0 and record.output_tokens > 0 and record.latency_ms >= 0


async def test_gemini_answer_maps_citations_and_drops_invented_ones(make_engine, fake_gemini):
    fake_gemini.default = gemini.Reply(text="Call `scene.zoom(2)` [1]. It also makes coffee [9].")
    async with make_engine(**with_gemini(fake_gemini)) as engine:
        answer = await engine.answer(Question(CAMERA))
    assert answer.model == "gemini:gemini-2.5-flash"
    assert answer.text == "Call `scene.zoom(2)` [1]. It also makes coffee."
    assert [c.number for c in answer.citations] == [1]
    prompt = fake_gemini.requests[0]["json"]["contents"][0]["parts"][0]["text"]
    assert "<<<passage [1] Camera basics" in prompt and "Question (untrusted):" in prompt
    assert "untrusted data" in fake_gemini.requests[0]["json"]["systemInstruction"]["parts"][0]["text"]


async def test_the_model_saying_not_in_context_makes_the_engine_abstain(make_engine, fake_gemini):
    fake_gemini.default = gemini.Reply(text="NOT_IN_CONTEXT")
    async with make_engine(**with_gemini(fake_gemini)) as engine:
        answer = await engine.answer(Question(CAMERA, channel="github"))
        [record] = await records(engine)
    assert answer.abstained and answer.text == ABSTAIN_TEXT and answer.citations == []
    assert answer.escalation == "A maintainer will follow up here."
    assert record.abstained


async def test_thresholds_are_per_channel_and_low_confidence_never_calls_the_model(make_engine, fake_gemini):
    thresholds = {"discord": 0.2, "github": 0.95, "api": 0.3, "web": 0.3}
    async with make_engine(**with_gemini(fake_gemini, abstain_thresholds=thresholds)) as engine:
        public = await engine.answer(Question(CAMERA, channel="github"))
        assert public.abstained and public.model == "none"
        assert fake_gemini.requests == []
        chat = await engine.answer(Question(CAMERA, channel="discord"))
    assert not chat.abstained and len(fake_gemini.requests) == 1


async def test_an_off_topic_question_abstains(make_engine):
    async with make_engine() as engine:
        answer = await engine.answer(Question("What's a good recipe for rye sourdough bread?"))
    assert answer.abstained and answer.escalation


async def test_provider_outage_falls_back_and_the_log_says_why(make_engine, fake_gemini):
    fake_gemini.default = gemini.Reply(status=503)
    async with make_engine(**with_gemini(fake_gemini)) as engine:
        answer = await engine.answer(Question(CAMERA))
        [record] = await records(engine)
    assert not answer.abstained and answer.model == "extractive" and "scene.zoom(2)" in answer.text
    assert record.fallback_reasons and "gemini:gemini-2.5-flash (HTTP 503)" in record.fallback_reasons[0]


async def test_model_mentions_are_defused(make_engine, fake_gemini):
    fake_gemini.default = gemini.Reply(text="@everyone zoom with scene.zoom(2) [1], ask <@&999>")
    async with make_engine(**with_gemini(fake_gemini)) as engine:
        answer = await engine.answer(Question(CAMERA))
    assert "@everyone" not in answer.text and "<@&999>" not in answer.text


async def test_a_conversation_keeps_its_turns_and_the_budget_trims_the_oldest(make_engine, fake_gemini):
    long_question = "How do I zoom the camera in when the scene is big? " + "Some context about my scene. " * 40
    settings = with_gemini(fake_gemini, llm_context_window=1900, max_output_tokens=256)
    async with make_engine(**settings) as engine:
        thread = "discord-thread-1"
        for _ in range(3):
            await engine.answer(Question(long_question, channel="discord", conversation_id=thread))
        turns = await records(engine, Turn)
        answers = sorted(await records(engine), key=lambda r: r.created_at)
    assert [t.role for t in turns] == ["user", "assistant"] * 3
    assert all(t.tokens > 0 for t in turns)
    assert answers[0].trimmed["turns"] == 0
    assert answers[2].trimmed["turns"] >= 1  # the oldest history was dropped to fit the window
    last_prompt = [r for r in fake_gemini.requests if r["method"] == "generateContent"][-1]["json"]["contents"][0]["parts"][0]["text"]
    assert "Conversation so far" in last_prompt
    assert answers[2].prompt_tokens == 42  # as the provider reported it


async def test_follow_ups_are_rewritten_into_standalone_questions(make_engine, fake_gemini):
    fake_gemini.script = [gemini.Reply(text="Zoom with scene.zoom(2) [1].")]
    async with make_engine(**with_gemini(fake_gemini)) as engine:
        await engine.answer(Question(CAMERA, conversation_id="t"))
        fake_gemini.script = [gemini.Reply(text="How do I zoom out of the camera?"), gemini.Reply(text="Use scene.zoom(0.5) [1].")]
        answer = await engine.answer(Question("and the other way?", conversation_id="t"))
        rows = sorted(await records(engine), key=lambda r: r.created_at)
    rewrite = fake_gemini.requests[1]["json"]
    assert rewrite["systemInstruction"]["parts"][0]["text"] == REWRITE_SYSTEM
    assert "and the other way?" in rewrite["contents"][0]["parts"][0]["text"]
    assert rows[1].search_query == "How do I zoom out of the camera?"
    assert answer.text == "Use scene.zoom(0.5) [1]."


async def test_without_a_model_a_short_follow_up_is_searched_with_the_question_before_it(make_engine):
    async with make_engine() as engine:
        await engine.answer(Question(CAMERA, conversation_id="t2"))
        await engine.answer(Question("and zooming out?", conversation_id="t2"))
        rows = sorted(await records(engine), key=lambda r: r.created_at)
    assert rows[1].search_query == f"{CAMERA} and zooming out?"


async def test_streaming_sends_deltas_then_the_logged_answer(make_engine, fake_gemini):
    fake_gemini.default = gemini.Reply(text="Use scene.zoom(2) to zoom in, and scene.zoom(0.5) to zoom out [1].", chunks=5)
    async with make_engine(**with_gemini(fake_gemini)) as engine:
        events = [e async for e in engine.answer_stream(Question(CAMERA))]
        [record] = await records(engine)
    deltas = [e["text"] for e in events if e["type"] == "delta"]
    assert len(deltas) >= 3 and "".join(deltas) == "Use scene.zoom(2) to zoom in, and scene.zoom(0.5) to zoom out [1]."
    final = events[-1]["answer"]
    assert events[-1]["type"] == "answer" and final.id == record.id and final.citations[0].number == 1


async def test_a_streamed_not_in_context_shows_nothing_but_the_abstention(make_engine, fake_gemini):
    fake_gemini.default = gemini.Reply(text="NOT_IN_CONTEXT", chunks=4)
    async with make_engine(**with_gemini(fake_gemini)) as engine:
        events = [e async for e in engine.answer_stream(Question(CAMERA))]
    assert [e["type"] for e in events] == ["answer"] and events[0]["answer"].abstained


async def test_one_vote_per_user_per_answer_and_it_can_change(make_engine):
    async with make_engine() as engine:
        answer = await engine.answer(Question(CAMERA))
        assert await engine.feedback(answer.id, "discord:1", 1) is True
        assert await engine.feedback(answer.id, "discord:1", -1, "wrong page") is False
        assert await engine.feedback(answer.id, "discord:2", 1) is True
        votes = await engine.store.votes(answer.id)
        rows = await records(engine, Feedback)
        with pytest.raises(UnknownAnswer):
            await engine.feedback("no-such-answer", "discord:1", 1)
        with pytest.raises(ValueError):
            await engine.feedback(answer.id, "discord:1", 5)
    assert votes == {"up": 1, "down": 1}
    assert len(rows) == 2 and {r.comment for r in rows} == {"wrong page", None}


async def test_near_the_limit_the_model_s_own_token_count_decides(make_engine, fake_gemini):
    # The fake counts one token per word, far fewer than the local estimate: the estimate trims first,
    # and an exact count near the limit confirms the fit with one countTokens call.
    settings = with_gemini(fake_gemini, llm_context_window=1200, max_output_tokens=256)
    async with make_engine(**settings) as engine:
        await engine.answer(Question(CAMERA + " " + "Some detail about my scene. " * 100))
    methods = [r["method"] for r in fake_gemini.requests]
    assert methods == ["countTokens", "generateContent"]


async def test_the_offline_answerer_reads_the_thread_title_too(make_engine):
    async with make_engine() as engine:
        vague = await engine.answer(Question("It does not work for me, what am I missing?", channel="web"))
        titled = await engine.answer(Question("It does not work for me, what am I missing?", channel="web", title=CAMERA))
    assert "scene.zoom(2)" not in vague.text
    assert not titled.abstained and "scene.zoom(2)" in titled.text


async def test_answers_are_given_whole_sections_each_once(make_engine):
    async with make_engine() as engine:
        hits = await engine.answer_search(CAMERA, k=5)
        chunks = engine.retriever().keywords.chunks
    assert hits
    for hit in hits:
        same_section = [c for c in chunks if (c.path, c.heading_path) == (hit.chunk.path, hit.chunk.heading_path)]
        assert all(c.text.strip() in hit.chunk.text for c in same_section)  # every chunk of its section
    sections = [(h.chunk.path, h.chunk.heading_path) for h in hits]
    assert len(sections) == len(set(sections))


async def test_answers_are_given_the_best_section_of_each_of_the_best_pages(make_engine):
    # One section per page: a second section of the top page is weaker evidence than the best part of the next
    # page (on the Payload set: sources R@5 0.415 -> 0.615, false abstentions 9 -> 5 of 337).
    async with make_engine() as engine:
        hits = await engine.answer_search(CAMERA, k=3)
        pages = [h.chunk.path for h in await engine.asearch(CAMERA, k=20, per_page=1)]
    assert len(pages) >= 3
    assert [h.chunk.path for h in hits] == pages[:3]
