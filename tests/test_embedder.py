"""The embedding model: local weights only, checked before loading, batched off the loop."""

import asyncio
import shutil

import numpy as np
import pytest

from engine.index.embedder import PACKAGED_WEIGHTS_SHA256, Embedder, EmbeddingModelError, resolve_model, sha256_of


def test_the_packaged_weights_are_the_pinned_ones():
    location, expected = resolve_model("all-MiniLM-L6-v2")
    assert expected == PACKAGED_WEIGHTS_SHA256
    from pathlib import Path

    assert sha256_of(Path(location) / "model.safetensors") == PACKAGED_WEIGHTS_SHA256


def test_tampered_weights_are_refused_before_loading(tmp_path):
    location, _ = resolve_model("all-MiniLM-L6-v2")
    copy = tmp_path / "model"
    shutil.copytree(location, copy)
    with (copy / "model.safetensors").open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(EmbeddingModelError, match="have SHA-256"):
        _ = Embedder(str(copy), expected_sha256=PACKAGED_WEIGHTS_SHA256).model  # loading checks the weights


def test_an_unknown_model_name_fails_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    with pytest.raises(EmbeddingModelError, match="can't load embedding model"):
        _ = Embedder("someone/not-a-local-model").model  # loading looks for it
    assert not any((tmp_path / "hf").rglob("*.safetensors"))


def test_vectors_are_normalised_and_similar_texts_are_close(embedder):
    vectors = embedder.encode(["how do I install it", "installation instructions", "chocolate cake recipe"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert embedder.max_tokens == 256
    assert embedder.count_tokens("hello world") == 2


def test_async_encoding_runs_off_the_event_loop(embedder):
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.001)
                ticks += 1

        task = asyncio.create_task(ticker())
        vectors = await embedder.aencode(["a sentence to embed"] * 512)
        task.cancel()
        return vectors, ticks

    vectors, ticks = asyncio.run(main())
    assert vectors.shape == (512, 384)
    assert ticks > 5  # the loop kept running while the model worked


def test_onnx_query_vectors_are_the_pytorch_ones(embedder, tmp_path):
    from engine.index.embedder import Embedder

    fast = Embedder(threads=1)
    assert fast.use_onnx_for_queries(tmp_path / "onnx") is True
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == [  # the graph, and that it agreed with PyTorch
        PACKAGED_WEIGHTS_SHA256[:16] + ".onnx", PACKAGED_WEIGHTS_SHA256[:16] + ".onnx.verified"]
    texts = ["zoom", "How do I change the opacity of an actor made from polydata?", "x " * 400]
    similarity = np.sum(fast.encode_queries(texts) * embedder.encode(texts), axis=1)
    assert np.all(similarity > 0.9999)
    again = Embedder(threads=1)
    assert again.use_onnx_for_queries(tmp_path / "onnx") is True  # reuses the exported file


def test_int8_query_vectors_are_close_to_the_pytorch_ones_and_rank_alike(embedder, tmp_path, caplog):
    import logging

    from engine.index.embedder import Embedder

    fast = Embedder(threads=1)
    with caplog.at_level(logging.INFO):
        assert fast.use_onnx_for_queries(tmp_path / "onnx", quantized=True) is True
    assert not [r for r in caplog.records if r.name == "root"]  # the quantizer's chatter and tips stay out
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == [
        PACKAGED_WEIGHTS_SHA256[:16] + ".int8.onnx", PACKAGED_WEIGHTS_SHA256[:16] + ".int8.onnx.verified",
        PACKAGED_WEIGHTS_SHA256[:16] + ".onnx"]
    questions = ["zoom", "How do I change the opacity of an actor made from polydata?", "x " * 400,
                 "useFormFields() throws TypeError: Cannot read properties of undefined"]
    similarity = np.sum(fast.encode_queries(questions) * embedder.encode(questions), axis=1)
    assert np.all(similarity > 0.98) and not np.all(similarity > 0.99999)  # close, and really the int8 graph
    passages = ["Set the opacity of an actor with actor.GetProperty().SetOpacity(0.5).",
                "Install the package with pip install fury.",
                "The camera zoom is changed with scene.zoom(factor).",
                "Form fields are read with the useFormFields hook inside a custom component."]
    documents = embedder.encode(passages)
    exact = np.argmax(embedder.encode(questions[1:2] + questions[3:]) @ documents.T, axis=1)
    quantized = np.argmax(fast.encode_queries(questions[1:2] + questions[3:]) @ documents.T, axis=1)
    assert list(exact) == list(quantized) == [0, 3]


def test_questions_run_in_length_groups_and_come_back_in_order(tmp_path):
    from engine.index.embedder import Embedder
    from engine.index.onnx_queries import length_groups

    assert length_groups([100, 5, 7, 256, 6], 256) == [[1, 4, 2], [0], [3]]
    assert length_groups([300], 256) == [[0]]  # one row longer than the budget still runs
    assert length_groups([], 256) == []
    fast = Embedder(threads=1)
    assert fast.use_onnx_for_queries(tmp_path / "onnx") is True
    texts = ["a long question " * 60, "zoom", "How do I install it?", "another long one " * 50, "x"]
    together = fast.encode_queries(texts)
    alone = np.concatenate([fast.encode_queries([t]) for t in texts])
    assert together.shape == (5, 384)
    assert np.allclose(together, alone, atol=1e-5)
    assert fast.encode_queries([]).shape == (0, 384)


def test_queries_stay_on_pytorch_when_onnx_cannot_be_used(tmp_path, monkeypatch, caplog):
    from engine.index import onnx_queries
    from engine.index.embedder import Embedder

    def broken_export(model_dir, target):
        raise RuntimeError("exporter unavailable")

    monkeypatch.setattr(onnx_queries, "export", broken_export)
    slow = Embedder()
    assert slow.use_onnx_for_queries(tmp_path / "onnx") is False
    assert "queries stay on PyTorch: export failed" in caplog.text
    assert slow.encode_queries(["zoom"]).shape == (1, 384)


def test_the_cold_query_encoder_gives_the_models_vectors_from_a_verified_graph_only(embedder, tmp_path):
    """Issue 15 item 13: the torch-free encoder of `firstreply ask` uses only a graph that agreed with PyTorch."""
    from pathlib import Path

    import numpy as np

    from engine.index.embedder import Embedder
    from engine.index.onnx_queries import ColdQueryEncoder, OnnxQueryEncoder, verified_graph

    cache = tmp_path / "onnx"
    assert verified_graph(cache, embedder.weights_sha256) is None
    OnnxQueryEncoder(embedder, cache)  # exports and verifies
    graph = verified_graph(cache, embedder.weights_sha256)
    assert graph is not None
    questions = ["How do I zoom the camera in?", "useFormFields() throws TypeError", "ünïcödé and emoji 🙂 " * 40]
    cold = ColdQueryEncoder(Path(embedder.location), graph).encode(questions)
    assert float(np.min(np.sum(cold * embedder.encode(questions), axis=1))) > 0.9999
    fresh = Embedder()
    assert fresh.use_cold_queries(cache) and "model" not in fresh.__dict__  # no model loaded for a question
    graph.write_bytes(graph.read_bytes() + b"\0")  # a graph changed since it was verified is not trusted
    assert verified_graph(cache, embedder.weights_sha256) is None and not Embedder().use_cold_queries(cache)
