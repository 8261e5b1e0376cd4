"""Running the bot: from settings to a connected client, in process with the engine or apart from it."""

from __future__ import annotations

import discord
import yarl

from bot.client import BotConfig, FirstReplyBot, ShardedFirstReplyBot
from engine.config import ConfigError, Settings
from engine.protocol import Answerer


def bot_config(settings: Settings) -> BotConfig:
    return BotConfig(
        help_channels=frozenset(settings.discord_help_channels),
        forum_channels=frozenset(settings.discord_forum_channels),
        maintainer_role=settings.discord_maintainer_role,
        answer_dms=settings.discord_answer_dms,
        thread_mode=settings.discord_thread_mode,
        command_guilds=frozenset(settings.discord_guild_ids),
    )


def point_at(settings: Settings) -> None:
    """Send discord.py to another REST base or gateway (a proxy, or a test's fake) when configured."""
    if settings.discord_api_base:
        discord.http.Route.BASE = str(settings.discord_api_base).rstrip("/")
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


async def start_bot(settings: Settings, answerer: Answerer) -> FirstReplyBot:
    """Log in (so a refused token fails here, as a :class:`ConfigError` naming the setting) and return the bot."""
    if settings.discord_token is None:
        raise ConfigError("bad setting FIRSTREPLY_DISCORD_TOKEN: required to run the Discord bot")
    point_at(settings)
    metrics = answerer.metrics  # None for a remote engine: the bot then counts into its own
    if settings.discord_shard_count:
        bot = ShardedFirstReplyBot(answerer, bot_config(settings), metrics=metrics, shard_count=settings.discord_shard_count)
    else:
        bot = FirstReplyBot(answerer, bot_config(settings), metrics=metrics)
    try:
        await bot.login(settings.discord_token.get_secret_value())
    except discord.LoginFailure:
        await bot.close()
        raise ConfigError("bad setting FIRSTREPLY_DISCORD_TOKEN: Discord refused the token") from None
    return bot


async def run_bot(settings: Settings, answerer: Answerer) -> None:
    """Log in and stay connected until the bot is closed."""
    bot = await start_bot(settings, answerer)
    try:
        await bot.connect()
    except discord.PrivilegedIntentsRequired:
        raise ConfigError("the bot needs the Message Content intent: enable it in the Discord developer portal") from None
    finally:
        await bot.close()
