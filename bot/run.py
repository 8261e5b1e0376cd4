"""Running the bot: from settings to a connected client, in process with the engine or apart from it."""

from __future__ import annotations

import discord
import yarl

from bot.client import BotConfig, FirstReplyBot, ShardedFirstReplyBot
from engine.config import ConfigError, DiscordSettings
from engine.protocol import Answerer


def point_at(settings: DiscordSettings) -> None:
    """Send discord.py to another REST base or gateway (a proxy, or a test's fake) when configured."""
    if settings.api_base:
        discord.http.Route.BASE = str(settings.api_base).rstrip("/")
    if settings.gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


async def start_bot(settings: DiscordSettings, answerer: Answerer) -> FirstReplyBot:
    """Log in with the bot's part of the settings (``settings.discord``), so a refused token fails here, as a
    :class:`ConfigError` naming the setting, and return the bot."""
    if settings.token is None:
        raise ConfigError(f"bad setting {settings.variable('token')}: required to run the Discord bot")
    point_at(settings)
    metrics = answerer.metrics  # None for a remote engine: the bot then counts into its own
    if settings.shard_count:
        bot = ShardedFirstReplyBot(answerer, BotConfig.of(settings), metrics=metrics, shard_count=settings.shard_count)
    else:
        bot = FirstReplyBot(answerer, BotConfig.of(settings), metrics=metrics)
    try:
        await bot.login(settings.token.get_secret_value())
    except discord.LoginFailure:
        await bot.close()
        raise ConfigError(f"bad setting {settings.variable('token')}: Discord refused the token") from None
    return bot


async def run_bot(settings: DiscordSettings, answerer: Answerer) -> None:
    """Log in and stay connected until the bot is closed."""
    bot = await start_bot(settings, answerer)
    try:
        await bot.connect()
    except discord.PrivilegedIntentsRequired:
        raise ConfigError("the bot needs the Message Content intent: enable it in the Discord developer portal") from None
    finally:
        await bot.close()
