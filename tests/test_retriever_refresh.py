"""The engine's retriever cache under concurrency: a golden-record re-index (which drops the cached retriever)
landing while an answer reads a newer keyword index must not fail that answer."""

from __future__ import annotations

from engine.index.keywords import KeywordIndex


async def test_an_answer_survives_the_retriever_being_dropped_while_it_reads_a_new_index(make_engine, monkeypatch):
    engine = make_engine()
    await engine.start()
    try:
        hits = await engine.asearch("How do I zoom the camera in?")
        assert hits
        real_load = KeywordIndex.load
        dropped = []

        def load_while_a_reindex_drops_the_cache(path):
            engine._retrievers.pop("sample", None)  # what sync_golden does when the golden records changed
            dropped.append(path)
            return real_load(path)

        monkeypatch.setattr(KeywordIndex, "saved_revision", staticmethod(lambda path: "another ingest finished"))
        monkeypatch.setattr(KeywordIndex, "load", staticmethod(load_while_a_reindex_drops_the_cache))
        engine._revision_checked.clear()
        again = await engine.asearch("How do I zoom the camera in?")
        assert dropped, "the test did not reach the refresh it means to race"
        assert [h.chunk.id for h in again] == [h.chunk.id for h in hits]
    finally:
        await engine.close()
