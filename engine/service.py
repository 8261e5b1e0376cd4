"""``Engine``: the engine in one process — ingest, search, answer and feedback.

It implements the answer protocol that frontends use (``answer``, ``answer_stream``,
``feedback``), the same one :class:`engine.client.EngineClient` implements over HTTP. Heavy
parts (the embedding model, the Chroma client) are built on first use; the database and the
provider chain are opened by :meth:`start`, which also builds the engine's two services once:
:attr:`review_service` (:class:`engine.review.service.ReviewService`) and :attr:`tuning_service`
(:class:`engine.tuning.service.TuningService`), each given what it needs.

The model that answers is the one activated in the database (``firstreply tune activate``,
the API, the Tuning page), whichever process activated it: before a question each engine
looks at the activations in force, at most every ``FIRSTREPLY_ACTIVATION_CHECK_SECONDS``,
and rebuilds its provider chain when they changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, TypeVar

from engine.answer.assisted_retrieval import AssistSettings, StepBudget
from engine.answer.citations import strip_markers
from engine.answer.model import Answer, Question
from engine.answer.pipeline import AnswerPipeline, PipelineSettings, pseudonym
from engine.config import KB_NAME, Settings, load_settings
from engine.index.embedder import Embedder
from engine.index.golden import GoldenPair, PastAnswer, sync_golden, sync_past_answers
from engine.index.keywords import KeywordIndex
from engine.index.retriever import Hit, Retriever
from engine.index.vectors import Chroma, VectorStore
from engine.llm.chain import ProviderChain
from engine.llm.factory import build_chain
from engine.logs import Redactor, secrets_of
from engine.metrics import Metrics
from engine.protocol import check_channel_settings
from engine.review.service import ReviewService
from engine.store.history import HistoryStore
from engine.store.repository import Store
from engine.store.review import ReviewStore
from engine.store.shared_secrets import SharedSecrets
from engine.store.tuning import TuningStore
from engine.tuning.service import TuningService

if TYPE_CHECKING:  # ingesting is imported when it is used: a cold `firstreply ask` reads no sources
    from sqlalchemy.ext.asyncio import AsyncEngine

    from engine.index.build import IngestReport
    from engine.ingest.reader import Progress
    from engine.ingest.remote import Checkout
    from engine.llm.base import Provider
    from engine.web import ReviewExtension


LOCAL_REFRESH_SECONDS = 1.0  # how often a server on an embedded store looks for an ingest another process finished


def assist_settings(settings: Settings) -> AssistSettings:
    """The model-assisted retrieval steps as configured (``FIRSTREPLY_RETRIEVAL_*``)."""
    a, default = settings.answer, AssistSettings()
    return AssistSettings(
        rewrite=StepBudget(a.retrieval_rewrite, a.retrieval_rewrite_tokens, a.retrieval_rewrite_ms, default.rewrite.output_tokens),
        hyde=StepBudget(a.retrieval_hyde, a.retrieval_hyde_tokens, a.retrieval_hyde_ms, default.hyde.output_tokens),
        rerank=StepBudget(a.retrieval_rerank, a.retrieval_rerank_tokens, a.retrieval_rerank_ms, default.rerank.output_tokens),
        rerank_candidates=a.retrieval_rerank_candidates)


def ingested_kbs(settings: Settings) -> list[str]:
    """The knowledge bases something was ingested into (each has a manifest), by name."""
    root = settings.kb_dir
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if KB_NAME.match(p.name) and (p / "manifest.json").is_file())


T = TypeVar("T")


class Engine:
    def __init__(self, settings: Settings | None = None, *, pinned_kb: bool = False) -> None:
        self.settings = settings or load_settings()
        self.pinned_kb = pinned_kb  # serve only settings.kb (`serve --kb`), not every ingested knowledge base
        self._retrievers: dict[str, Retriever] = {}
        self._vector_stores: dict[str, VectorStore] = {}
        self._shared_secrets: dict[str, str] = {}
        self._revision_checked: dict[str, float] = {}
        self.store: Store | None = None
        self.chain: ProviderChain | None = None
        self.pipeline: AnswerPipeline | None = None
        self._review: ReviewService | None = None
        self.review_extensions: list[ReviewExtension] = []  # frontends' parts of the review pages
        self._tuning: TuningService | None = None
        self.metrics = Metrics()
        self._golden_lock = asyncio.Lock()
        self._chain_lock = asyncio.Lock()
        self._chain_specs: list[str] = []  # the activated models the chain was built with, in answering order
        self._activation_checked = float("-inf")
        self._retired_chains: list[ProviderChain] = []  # replaced while answers may still be using them
        self._start_lock = asyncio.Lock()

    # -- index -----------------------------------------------------------------------------

    @cached_property
    def embedder(self) -> Embedder:
        i = self.settings.index
        return Embedder(i.embedding_model, device=i.embedding_device, batch_size=i.embedding_batch_size,
                        expected_sha256=i.embedding_sha256, threads=i.embedding_threads)

    def prepare_queries(self) -> None:
        """Be ready to encode questions (for serving). With ONNX configured and its graph already verified (an
        ingest or an earlier serve did it), that graph encodes them and torch is loaded only when documents are
        embedded (an ingest, a golden record); otherwise the model is loaded, and with ONNX configured the graph is
        exported and verified for next time."""
        onnx, quantized = self.settings.core.data_dir / "onnx", self.settings.index.query_encoder == "onnx-int8"
        if self.settings.index.query_encoder != "torch" and self.embedder.use_cold_queries(onnx, quantized):
            return
        _ = self.embedder.model  # a cached property: reading it loads the model
        if self.settings.index.query_encoder != "torch":
            self.embedder.use_onnx_for_queries(onnx, quantized=quantized)

    @cached_property
    def chroma(self) -> Chroma:
        """The Chroma client, opened on first use; every call to a server is bounded by ``chroma_timeout_seconds``."""
        i = self.settings.index
        return Chroma(self.settings.core.data_dir / "chroma", str(i.chroma_url) if i.chroma_url else None,
                      i.chroma_timeout_seconds)

    def served_kbs(self) -> list[str]:
        """The knowledge bases the Ask page offers: the pinned one, else every ingested one (the default first),
        looked up each time so a base ingested while serving appears."""
        if self.pinned_kb:
            return [self.settings.core.kb]
        found = ingested_kbs(self.settings)
        if self.settings.core.kb in found:
            found.remove(self.settings.core.kb)
        return [self.settings.core.kb, *found]

    def kb_dir(self, kb: str | None = None) -> Path:
        return self.settings.kb_dir / (kb or self.settings.core.kb)

    def vectors(self, kb: str | None = None) -> VectorStore:
        """The knowledge base's vector store (making it does no I/O, so this is safe on the event loop)."""
        kb = kb or self.settings.core.kb
        if kb not in self._vector_stores:
            self._vector_stores[kb] = VectorStore(self.chroma, kb)
        return self._vector_stores[kb]

    def ingest(self, path: Path, *, repo_url: str | None = None, ref: str | None = None, kb: str | None = None,
               progress: Progress | None = None) -> IngestReport:
        """Index a folder into the vector store and the keyword index (no database needed; see :meth:`aingest`)."""
        from engine.index.build import IndexBuilder

        kb = kb or self.settings.core.kb
        ingestor = IndexBuilder(self.embedder, self.vectors(kb), self.kb_dir(kb),
                                max_tokens=self.settings.index.chunk_max_tokens, url_map=self.settings.index.url_map, source_base=f"{self.public_url}/source/{kb}")
        try:
            return ingestor.run(path, repo_url=repo_url, ref=ref, progress=progress)
        finally:  # even an unchanged run may have repaired the keyword index: read it again
            self._retrievers.pop(kb, None)

    async def aingest(self, path: Path, *, repo_url: str | None = None, ref: str | None = None, kb: str | None = None,
                      progress: Progress | None = None) -> IngestReport:
        """:meth:`ingest`, then the golden records and past answers indexed again wherever the index lacks them (a lost store)."""
        report = await asyncio.to_thread(self.ingest, path, repo_url=repo_url, ref=ref, kb=kb, progress=progress)
        if (kb or self.settings.core.kb) == self.settings.core.kb:  # golden records (and past answers) belong to the default one
            await self.sync_golden()
            await self.sync_past_answers()
        return report

    def sync_remote(self, url: str, *, ref: str | None = None) -> Checkout:
        """The git repository at ``url`` (at ``ref``, else its default branch) cloned into ``data_dir/sources`` the
        first time and fetched and reset later (:mod:`engine.ingest.remote`: ``BadGitUrl`` for a URL it refuses,
        ``GitFailed`` when git can't); ingest ``Checkout.path`` then, and its links go to the repository at the commit."""
        from engine.ingest.remote import RemoteCheckout, parse_git_url

        remote = parse_git_url(url)
        return RemoteCheckout(remote, self.settings.core.data_dir / "sources" / remote.folder_name(ref), ref=ref).sync()

    def retriever(self, kb: str | None = None) -> Retriever:
        kb = kb or self.settings.core.kb
        retriever = self._retrievers.get(kb)  # read once: the event loop may drop the entry while this thread runs
        if retriever is None:
            keywords = KeywordIndex.load(self.kb_dir(kb) / "keywords")
            retriever = self._retrievers[kb] = Retriever(self.embedder, self.vectors(kb), keywords)
        return retriever

    def search(self, question: str, *, k: int | None = None, kb: str | None = None, title: str | None = None) -> list[Hit]:
        return self.retriever(kb).search(question, k=k or self.settings.index.search_k, title=title)

    async def asearch(self, question: str, *, k: int | None = None, kb: str | None = None, title: str | None = None,
                      per_page: int | None = 2) -> list[Hit]:
        retriever = await self._current_retriever(kb or self.settings.core.kb)
        return await retriever.asearch(question, k or self.settings.index.search_k, per_page, title)

    async def answer_search(self, question: str, *, k: int | None = None, kb: str | None = None,
                            title: str | None = None) -> list[Hit]:
        """The evidence an answer is given: ``asearch``'s best hit of each page, widened to its whole section (a list
        of steps, a table, an example whole, not the chunk of it that matched), ``k`` different sections. One per
        page: the best part of the next page is better evidence than a second section of the first."""
        k = k or self.settings.index.search_k
        retriever = await self._current_retriever(kb or self.settings.core.kb)
        return retriever.with_sections(await retriever.asearch(question, 2 * k, 1, title), k)

    async def _current_retriever(self, kb: str) -> Retriever:
        """The knowledge base's retriever; with a shared Chroma server, rebuilt when another replica changed the vectors."""
        retriever = self._retrievers.get(kb)
        if retriever is None:  # first use loads it
            retriever = await asyncio.to_thread(self.retriever, kb)
        if self.settings.index.chroma_url is None:
            return await self._current_local_retriever(kb, retriever)
        now = time.monotonic()
        if now - self._revision_checked.get(kb, float("-inf")) < self.settings.index.keyword_refresh_seconds:
            return retriever
        self._revision_checked[kb] = now
        revision = await asyncio.to_thread(self.vectors(kb).revision)
        if revision != retriever.keywords.revision:
            retriever = await asyncio.to_thread(self._rebuild_keywords, kb, revision)
        return retriever

    async def _current_local_retriever(self, kb: str, retriever: Retriever) -> Retriever:
        """Embedded set-up: another process (``firstreply ingest``) may have finished an ingest; it saves the keyword
        index with the new revision last, so when the saved revision moves the index is read again (checked at
        most every ``LOCAL_REFRESH_SECONDS``: one small file read)."""
        now = time.monotonic()
        if now - self._revision_checked.get(kb, float("-inf")) < LOCAL_REFRESH_SECONDS:
            return retriever
        self._revision_checked[kb] = now
        saved = await asyncio.to_thread(KeywordIndex.saved_revision, self.kb_dir(kb) / "keywords")
        if saved == retriever.keywords.revision:
            return retriever
        fresh = Retriever(self.embedder, self.vectors(kb), await asyncio.to_thread(KeywordIndex.load,
                                                                                   self.kb_dir(kb) / "keywords"))
        current = self._retrievers.get(kb)
        if current is retriever or current is None:  # a golden re-index may have dropped it meanwhile: ours is newer
            self._retrievers[kb] = fresh
            return fresh
        return current  # something else put a newer one in place meanwhile

    def _rebuild_keywords(self, kb: str, revision: str | None) -> Retriever:
        vectors = self.vectors(kb)
        keywords = KeywordIndex.build(vectors.all_chunks())
        keywords.save(self.kb_dir(kb) / "keywords", revision)
        retriever = self._retrievers[kb] = Retriever(self.embedder, vectors, keywords)
        return retriever

    def index_size(self, kb: str | None = None) -> int:
        return len(self.retriever(kb).keywords.chunks)

    # -- answers ---------------------------------------------------------------------------

    def _shared(self, name: str) -> str:
        if name not in self._shared_secrets:
            raise RuntimeError("start() the engine first: its shared secrets come from the database")
        return self._shared_secrets[name]

    def _user_salt(self) -> str:
        return self._shared("user-salt")

    def session_secret(self) -> str:
        """The key that signs session cookies and CSRF tokens: the same on every replica (after :meth:`start`)."""
        return self._shared("session-secret")

    async def _agree_on_secrets(self, store: Store) -> None:
        """Each secret a user meets on every replica: configured, or created once in the shared database."""
        s, shared = self.settings, SharedSecrets(store.engine)
        self._shared_secrets = {
            "user-salt": await shared.agree("user-salt", "FIRSTREPLY_USER_SALT", s.core.user_salt,
                                            s.core.data_dir / "user-salt", 16),
            "session-secret": await shared.agree("session-secret", "FIRSTREPLY_SESSION_SECRET", s.web.session_secret,
                                                 s.core.data_dir / "session-secret", 32),
        }

    @property
    def public_url(self) -> str:
        s = self.settings
        return str(s.web.public_url).rstrip("/") if s.web.public_url else f"http://{s.web.host}:{s.web.port}"

    async def start(self) -> "Engine":
        async with self._start_lock:
            if self.pipeline is None:
                await self._open()
        return self

    async def _open(self) -> None:
        store = await Store.open(self.settings.database)
        try:
            await self._agree_on_secrets(store)  # a replica whose secrets disagree stops here (ConfigError)
        except BaseException:
            await store.close()
            raise
        self.store = store
        s = self.settings
        pipeline_settings = PipelineSettings(
            thresholds=s.answer.abstain_thresholds, max_output_tokens=s.answer.max_output_tokens,
            context_window=s.answer.llm_context_window,
            k=s.index.search_k, history_turns=s.answer.history_turns, user_salt=self._user_salt(),
            redact=Redactor(secrets_of(self.settings)).redact, assist=assist_settings(s))
        review = ReviewService(ReviewStore(store.engine, self.review_extensions), index_golden=self.sync_golden,
                               extensions=self.review_extensions, quote=strip_markers,
                               history=HistoryStore(store.engine, lambda who: pseudonym(who, self._user_salt())),
                               index_past=self.sync_past_answers)
        tuning = TuningService(TuningStore(store.engine), s, golden_records=review.all_golden_records,
                               audit=review.audit, search=self.answer_search, embedder=lambda: self.embedder,
                               pipeline_settings=pipeline_settings, chain_in_force=self._chain_in_force,
                               reload_chain=self.reload_chain)
        self._review, self._tuning = review, tuning
        self._chain_specs = await tuning.models_in_force()
        self._activation_checked = time.monotonic()
        self.chain = build_chain(self.settings, self._chain_specs)
        self.pipeline = AnswerPipeline(self.answer_search, self.chain, self.store, pipeline_settings, metrics=self.metrics)

    @property
    def database(self) -> AsyncEngine:
        """The database (SQLAlchemy's async engine) the frontends keep their own tables in, e.g. the GitHub App."""
        return self._started(self.store).engine

    @property
    def language_models(self) -> list[Provider]:
        """The models answering now, without the offline answerer (what model-assisted retrieval may ask)."""
        return self._started(self.chain).language_models

    @staticmethod
    def _started(part: T | None) -> T:
        if part is None:
            raise RuntimeError("start() the engine first: its services open with the database")
        return part

    @property
    def review_service(self) -> ReviewService:
        """The review (answers, verdicts, golden records, maintainers): built once, when the engine starts."""
        return self._started(self._review)

    @property
    def tuning_service(self) -> TuningService:
        """Fine-tuning (jobs, evaluation, activation, the runner): built once, when the engine starts."""
        return self._started(self._tuning)

    async def close(self) -> None:
        for chain in [*self._retired_chains, *([self.chain] if self.chain is not None else [])]:
            await chain.aclose()
        self._retired_chains = []
        if self.store is not None:
            await self.store.close()
        self.pipeline = self.store = self.chain = self._review = self._tuning = None

    async def __aenter__(self) -> "Engine":
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def _in_kb(self, question: Question) -> Question:
        """The question with the knowledge base it is answered from, so its log entry says which."""
        return question if question.kb else dataclasses.replace(question, kb=self.settings.core.kb)

    async def answer(self, question: Question) -> Answer:
        await self.start()
        await self._follow_activation()
        assert self.pipeline is not None
        return await self.pipeline.answer(self._in_kb(question))

    async def answer_stream(self, question: Question) -> AsyncIterator[dict[str, Any]]:
        await self.start()
        await self._follow_activation()
        assert self.pipeline is not None
        async for event in self.pipeline.answer_stream(self._in_kb(question)):
            yield event

    async def feedback(self, answer_id: str, user_id: str, vote: int, comment: str | None = None,
                       conversation_prefix: str | None = None) -> bool:
        """Record a 👍 (+1) or 👎 (-1); a user's second vote on an answer replaces the first. With
        ``conversation_prefix``, only answers in conversations whose id starts with it may be voted on."""
        if vote not in (1, -1):
            raise ValueError("vote must be 1 or -1")
        await self.start()
        assert self.store is not None
        return await self.store.vote(answer_id, pseudonym(user_id, self._user_salt()) or "", vote, comment,
                                     conversation_prefix)

    async def status(self) -> dict[str, Any]:
        """What an admin wants at a glance: index size, the model answering, answers logged."""
        await self.start()
        await self._follow_activation()
        assert self.chain is not None and self.store is not None
        chunks = await asyncio.to_thread(self.index_size)
        return {"kb": self.settings.core.kb, "index_chunks": chunks, "model": self.chain.primary.name,
                "providers": [p.name for p in self.chain.providers], "answers": await self.store.count_answers()}

    async def channel_settings(self, platform: str) -> dict[str, dict[str, bool | None]]:
        await self.start()
        assert self.store is not None
        return await self.store.channel_settings(platform)

    async def set_channel_settings(self, platform: str, channel_id: str, changes: dict[str, bool | None],
                                   by: str | None = None) -> dict[str, bool | None]:
        check_channel_settings(changes)
        await self.start()
        assert self.store is not None
        return await self.store.set_channel_settings(platform, channel_id, changes, by)

    # -- Discord threads (shared by every bot process and shard) ----------------------------

    @staticmethod
    def _thread_id(thread_id: str) -> str:
        if not isinstance(thread_id, str) or not thread_id.isdigit() or len(thread_id) > 30:
            raise ValueError("a Discord thread id is a number")
        return thread_id

    async def discord_thread(self, thread_id: str) -> dict[str, bool]:
        """``{"answered", "escalated"}``: whether the bot answered in this thread, and whether a maintainer was asked."""
        await self.start()
        assert self.store is not None
        return await self.store.discord_thread(self._thread_id(thread_id))

    async def mark_discord_thread_answered(self, thread_id: str) -> None:
        await self.start()
        assert self.store is not None
        await self.store.mark_discord_thread_answered(self._thread_id(thread_id))

    async def escalate_discord_thread(self, thread_id: str) -> bool:
        """Record that a maintainer was asked here; True only for the first call, whichever process makes it."""
        await self.start()
        assert self.store is not None
        return await self.store.escalate_discord_thread(self._thread_id(thread_id))

    # -- golden records in the index (the review service keeps them) ----------------------

    async def sync_golden(self) -> tuple[int, int]:
        """Index the golden records as they are now (one sync at a time; searches see it at once)."""
        await self.start()
        async with self._golden_lock:
            # Linked to the public view (visitors see these citations), quoted without markers an older
            # approval may have kept: they pointed at the sources of the answer it came from.
            pairs = [GoldenPair(r.id, r.question, strip_markers(r.answer), f"{self.public_url}/golden/{r.id}")
                     for r in await self.review_service.all_golden_records()]
            kb = self.settings.core.kb
            changed = await asyncio.to_thread(sync_golden, self.embedder, self.vectors(kb), self.kb_dir(kb) / "keywords", pairs)
            if any(changed):
                self._retrievers.pop(kb, None)
            return changed

    async def sync_past_answers(self) -> tuple[int, int]:
        """Index the imported past answers still waiting for review, cited by their threads' URLs."""
        await self.start()
        async with self._golden_lock:
            history = self.review_service.history
            past = [] if history is None else [PastAnswer(t.id, t.title, t.question, t.answer, t.url)
                                               for t in await history.searchable()]
            kb = self.settings.core.kb
            changed = await asyncio.to_thread(sync_past_answers, self.embedder, self.vectors(kb),
                                              self.kb_dir(kb) / "keywords", past)
            if any(changed):
                self._retrievers.pop(kb, None)
            return changed

    def register_review_extension(self, extension: ReviewExtension) -> None:
        """Add a frontend's part to the review pages (an :class:`engine.web.ReviewExtension`, e.g. the GitHub
        App's drafts): its detail beside each answer, its figures in the overview, its "post" action. It replaces
        an extension of the same name (an app built again on this engine)."""
        self.review_extensions[:] = [e for e in self.review_extensions if e.name != extension.name] + [extension]

    # -- the models answering (activated through the tuning service) ------------------------

    async def _follow_activation(self, *, force: bool = False) -> None:
        """Answer with the models in force in the database, wherever they were activated or rolled back: looked
        up at most every ``activation_check_seconds`` (at once with ``force``); the chain is rebuilt on a change."""
        if not force and time.monotonic() - self._activation_checked < self.settings.tuning.activation_check_seconds:
            return
        async with self._chain_lock:  # one lookup and one rebuild for all the questions waiting on it
            if not force and time.monotonic() - self._activation_checked < self.settings.tuning.activation_check_seconds:
                return
            assert self._tuning is not None and self.pipeline is not None
            specs = await self._tuning.models_in_force()
            self._activation_checked = time.monotonic()
            if specs != self._chain_specs:
                if self.chain is not None:  # answers under way finish on it; it is closed with the engine
                    self._retired_chains.append(self.chain)
                self.chain = self.pipeline.chain = build_chain(self.settings, specs)
                self._chain_specs = specs

    async def reload_chain(self) -> None:
        """Answer with the activated models from now on (in-flight answers finish on the old chain)."""
        await self.start()
        await self._follow_activation(force=True)

    async def _chain_in_force(self) -> ProviderChain:
        """The chain answering now, as the database says it should be (what an evaluation compares with)."""
        await self.reload_chain()
        assert self.chain is not None
        return self.chain

    def ask(self, question: str, *, kb: str | None = None) -> Answer:
        """Answer once from the command line (opens and closes the database around it). The question is encoded
        by the verified ONNX graph when there is one (no torch to load), else by the model."""
        if self.settings.index.query_encoder != "torch":
            self.embedder.use_cold_queries(self.settings.core.data_dir / "onnx")

        async def once() -> Answer:
            async with self:
                return await self.answer(Question(question, channel="api", kb=kb))

        return asyncio.run(once())
