"""The GitHub App's settings, resolved once: credentials checked, the private key read and parsed.

Everything comes from its part of the settings, :class:`engine.config.GitHubSettings`
(``FIRSTREPLY_GITHUB_*``, ``settings.github``), whose defaults are the App's defaults; this module
turns them into one frozen :class:`AppConfig`, or a :class:`ConfigError` whose one line names
every missing or bad setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from engine.config import ConfigError, GitHubSettings, RepositorySource

#: The settings the App can't run without (besides its private key, given one way or the other).
REQUIRED = ("app_id", "webhook_secret", "app_slug")
_DEFAULT = GitHubSettings.default


def _categories(names: list[str]) -> frozenset[str]:
    return frozenset(name.strip().lower() for name in names if name.strip())


@dataclass(frozen=True)
class ReplyPolicy:
    """Which discussions get a reply, and how (the pure decisions in :mod:`github_app.sansio` read it)."""

    categories: frozenset[str] = field(default_factory=lambda: _categories(_DEFAULT("categories")))  # empty: all
    opt_in: bool = _DEFAULT("opt_in")
    opt_in_text: str = _DEFAULT("opt_in_text")
    review_categories: frozenset[str] = field(default_factory=lambda: _categories(_DEFAULT("review_categories")))  # "*": all
    abstain: str = _DEFAULT("abstain")  # silent | note
    maintainer_hint: str = _DEFAULT("maintainer_hint")

    @classmethod
    def of(cls, github: GitHubSettings) -> ReplyPolicy:
        return cls(categories=_categories(github.categories), opt_in=github.opt_in, opt_in_text=github.opt_in_text,
                   review_categories=_categories(github.review_categories), abstain=github.abstain,
                   maintainer_hint=github.maintainer_hint)

    def answers_category(self, slug: str, name: str) -> bool:
        return not self.categories or bool({slug.lower(), name.lower()} & self.categories)

    def reviews_category(self, slug: str, name: str) -> bool:
        return "*" in self.review_categories or bool({slug.lower(), name.lower()} & self.review_categories)


@dataclass(frozen=True)
class AppConfig:
    app_id: int
    private_key: str
    webhook_secret: str
    slug: str
    api_url: str
    graphql_url: str
    policy: ReplyPolicy
    workers: int = _DEFAULT("workers")
    max_attempts: int = _DEFAULT("max_attempts")
    retry_base_seconds: float = _DEFAULT("retry_base_seconds")
    secondary_limit_seconds: float = _DEFAULT("secondary_limit_seconds")
    lease_seconds: float = _DEFAULT("lease_seconds")
    poll_seconds: float = _DEFAULT("poll_seconds")
    max_payload_bytes: int = _DEFAULT("max_payload_bytes")
    sources: dict[str, RepositorySource] = field(default_factory=dict)  # owner/name (lower case) -> what pushes re-ingest

    def __repr__(self) -> str:  # never print the key or the secret
        return f"AppConfig(app_id={self.app_id}, slug={self.slug!r}, api_url={self.api_url!r})"


def configured(github: GitHubSettings) -> bool:
    """Whether any GitHub App setting is given (then all the required ones must be)."""
    return any(getattr(github, name) is not None for name in (*REQUIRED, "private_key", "private_key_file"))


def _private_key(github: GitHubSettings) -> str:
    if github.private_key is not None:
        name, text = github.variable("private_key"), github.private_key.get_secret_value().replace("\\n", "\n")
    else:
        name, path = github.variable("private_key_file"), Path(github.private_key_file or "")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"bad setting {name}: can't read {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        key = load_pem_private_key(text.strip().encode(), password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"bad setting {name}: not a PEM private key (download one from the App's settings page)") from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(f"bad setting {name}: GitHub App keys are RSA keys")
    return text.strip() + "\n"


def app_config(github: GitHubSettings) -> AppConfig:
    """Resolve the App's settings (``settings.github``), or raise :class:`ConfigError` naming what is missing or bad."""
    missing = [github.variable(name) for name in REQUIRED if getattr(github, name) is None]
    if github.private_key is None and github.private_key_file is None:
        missing.append(f"{github.variable('private_key')} (or {github.variable('private_key_file')})")
    if missing:
        raise ConfigError(f"missing setting {', '.join(missing)}: required to run the GitHub App")
    assert github.app_id is not None and github.webhook_secret is not None
    api_url = str(github.api_url).rstrip("/")
    return AppConfig(
        app_id=github.app_id,
        private_key=_private_key(github),
        webhook_secret=github.webhook_secret.get_secret_value(),
        slug=github.app_slug or "",
        api_url=api_url,
        graphql_url=str(github.graphql_url).rstrip("/") if github.graphql_url else f"{api_url}/graphql",
        policy=ReplyPolicy.of(github),
        workers=github.workers,
        max_attempts=github.max_attempts,
        retry_base_seconds=github.retry_base_seconds,
        secondary_limit_seconds=github.secondary_limit_seconds,
        lease_seconds=github.lease_seconds,
        poll_seconds=github.poll_seconds,
        max_payload_bytes=github.max_payload_bytes,
        sources=dict(github.sources),
    )
