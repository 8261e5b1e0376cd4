"""The GitHub App's settings, resolved once: credentials checked, the private key read and parsed.

Everything comes from :class:`engine.config.Settings` (``FIRSTREPLY_GITHUB_*``); this module
turns them into one frozen :class:`AppConfig`, or a :class:`ConfigError` whose one line names
every missing or bad setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from engine.config import ConfigError, Settings

REQUIRED = {
    "FIRSTREPLY_GITHUB_APP_ID": "github_app_id",
    "FIRSTREPLY_GITHUB_WEBHOOK_SECRET": "github_webhook_secret",
    "FIRSTREPLY_GITHUB_APP_SLUG": "github_app_slug",
}


@dataclass(frozen=True)
class ReplyPolicy:
    """Which discussions get a reply, and how (the pure decisions in :mod:`github_app.sansio` read it)."""

    categories: frozenset[str] = frozenset({"q-a"})  # lower-cased slugs or names; empty: all
    opt_in: bool = False
    opt_in_text: str = "I want an AI-generated answer as a first response"
    review_categories: frozenset[str] = frozenset()  # "*": all
    abstain: str = "silent"  # silent | note
    maintainer_hint: str = "Not what you needed? Reply here and a maintainer will follow up."

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
    workers: int = 2
    max_attempts: int = 6
    retry_base_seconds: float = 5.0
    secondary_limit_seconds: float = 60.0  # GitHub: wait at least a minute after a secondary rate limit
    lease_seconds: float = 120.0
    poll_seconds: float = 5.0
    max_payload_bytes: int = 5 * 1024 * 1024

    def __repr__(self) -> str:  # never print the key or the secret
        return f"AppConfig(app_id={self.app_id}, slug={self.slug!r}, api_url={self.api_url!r})"


def configured(settings: Settings) -> bool:
    """Whether any GitHub App setting is given (then all the required ones must be)."""
    return any(getattr(settings, name) is not None for name in (*REQUIRED.values(), "github_private_key",
                                                                 "github_private_key_file"))


def _private_key(settings: Settings) -> str:
    if settings.github_private_key is not None:
        name, text = "FIRSTREPLY_GITHUB_PRIVATE_KEY", settings.github_private_key.get_secret_value().replace("\\n", "\n")
    else:
        name, path = "FIRSTREPLY_GITHUB_PRIVATE_KEY_FILE", Path(settings.github_private_key_file or "")
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


def app_config(settings: Settings) -> AppConfig:
    """Resolve the App's settings, or raise :class:`ConfigError` naming what is missing or bad."""
    missing = [env for env, name in REQUIRED.items() if getattr(settings, name) is None]
    if settings.github_private_key is None and settings.github_private_key_file is None:
        missing.append("FIRSTREPLY_GITHUB_PRIVATE_KEY (or FIRSTREPLY_GITHUB_PRIVATE_KEY_FILE)")
    if missing:
        raise ConfigError(f"missing setting {', '.join(missing)}: required to run the GitHub App")
    assert settings.github_app_id is not None and settings.github_webhook_secret is not None
    api_url = str(settings.github_api_url).rstrip("/")
    return AppConfig(
        app_id=settings.github_app_id,
        private_key=_private_key(settings),
        webhook_secret=settings.github_webhook_secret.get_secret_value(),
        slug=settings.github_app_slug or "",
        api_url=api_url,
        graphql_url=str(settings.github_graphql_url).rstrip("/") if settings.github_graphql_url else f"{api_url}/graphql",
        policy=ReplyPolicy(
            categories=frozenset(c.strip().lower() for c in settings.github_categories if c.strip()),
            opt_in=settings.github_opt_in,
            opt_in_text=settings.github_opt_in_text,
            review_categories=frozenset(c.strip().lower() for c in settings.github_review_categories if c.strip()),
            abstain=settings.github_abstain,
            maintainer_hint=settings.github_maintainer_hint,
        ),
        workers=settings.github_workers,
        max_attempts=settings.github_max_attempts,
        retry_base_seconds=settings.github_retry_base_seconds,
        secondary_limit_seconds=settings.github_secondary_limit_seconds,
        lease_seconds=settings.github_lease_seconds,
        poll_seconds=settings.github_poll_seconds,
        max_payload_bytes=settings.github_max_payload_bytes,
    )
