"""Issue 15 item 11 (engine side): golden records quoted without their old markers, a public read-only view for
the golden citations visitors see, and web answers logged with their knowledge base."""

from __future__ import annotations

import re

import aiohttp
from fakes.server import serve

from engine.answer.model import Question
from firstreply.serve import build_app  # the app `firstreply serve` runs


async def test_an_approved_answer_becomes_a_golden_record_without_its_old_markers(make_engine):
    engine = make_engine()
    async with engine:
        answer = await engine.answer(Question("How do I zoom the camera in?", channel="web"))
        assert re.search(r"\[\d+\]", answer.text)
        _record, golden = await engine.review_service.review(answer.id, "approved", "ada")
        assert not re.search(r"\[\d+\]", golden.answer) and "scene.zoom(2)" in golden.answer
        # A record that kept its markers (approved before this fix) is indexed without them too.
        old = await engine.review_service.add_golden_record("How to pan?", "Call scene.pan() [3] then render [1].", "ada")
        chunks = {c.path: c for c in engine.vectors().all_chunks({"source_type": "golden"})}
        assert chunks[f"golden/{old.id}"].text == "Call scene.pan() then render."
        assert chunks[f"golden/{old.id}"].url == f"{engine.public_url}/golden/{old.id}"


async def test_web_answers_are_logged_with_their_knowledge_base(make_engine):
    engine = make_engine()
    async with engine:
        answer = await engine.answer(Question("How do I zoom the camera in?", channel="web"))
        detail = await engine.review_service.detail(answer.id)
    assert detail["record"].kb == "sample"


async def test_a_golden_record_has_a_public_read_only_view(make_engine):
    engine = make_engine(api_keys=["k" * 40])  # keys configured: the API needs one, this view doesn't
    async with serve(build_app(engine)) as url:
        record = await engine.review_service.store.add_golden_record("How do I <b>zoom</b>?", "Call `scene.zoom(2)`.\n\n<script>x()</script>", "ada")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/golden/{record.id}") as response:
                assert response.status == 200 and response.content_type == "text/html"
                page = await response.text()
            assert "How do I &lt;b&gt;zoom&lt;/b&gt;?" in page and "<code>scene.zoom(2)</code>" in page
            assert "<script>" not in page and "/review/" not in page.split("<main", 1)[1]
            for bad in ("/golden/999999", "/golden/abc", "/golden/-1", "/golden/1%2F..%2F"):
                async with http.get(url + bad) as response:
                    assert response.status == 404, bad
            async with http.post(f"{url}/golden/{record.id}") as response:
                assert response.status == 405
