"""Whether the slash commands Discord has registered are the ones this bot defines, and the invite that grants
the right to register them.

Both sides go through discord.py's own model of a registered command (:class:`discord.app_commands.AppCommand`),
so the comparison sees definitions the way discord.py reads Discord's answers, not the shape of one JSON body or
the other. Fields Discord fills in with its defaults when the bot leaves them unset (``contexts``,
``integration_types``) and those that only apply to global commands are left out of a guild's comparison.
"""

from __future__ import annotations

import discord
from discord.app_commands import AppCommand

#: What docs/discord.md asks for when inviting the bot.
INVITE_PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True, send_messages_in_threads=True,
                                         create_public_threads=True, read_message_history=True, embed_links=True)


DISCORD_DEFAULTED = ("contexts", "integration_types")  # left unset, Discord fills in its defaults


def definition(command: AppCommand, *, guild: bool) -> dict:
    """What defines a registered command: its payload as discord.py reads it, without the ids Discord assigns."""
    data = dict(command.to_dict())
    data.pop("id", None)
    data.pop("application_id", None)
    permissions = command.default_member_permissions
    data["default_member_permissions"] = None if permissions is None else permissions.value
    data["nsfw"] = command.nsfw
    if guild:  # DM permission, contexts and installation types are for global commands only
        for key in DISCORD_DEFAULTED:
            data.pop(key, None)
    else:
        data["dm_permission"] = command.dm_permission
    return data


def as_app_command(payload: dict) -> AppCommand:
    """A command the bot defines (``Command.to_dict(tree)``), read as discord.py reads a registered one."""
    return AppCommand(data={**payload, "id": 0, "application_id": 0}, state=None)  # type: ignore[arg-type]


def commands_differ(local: list[dict], registered: list[AppCommand], *, guild: bool) -> bool:
    """True when the bot's command payloads and what Discord has registered are not the same set of commands."""
    wanted = {}
    for payload in local:
        command = as_app_command(payload)
        data = definition(command, guild=guild)
        for key in DISCORD_DEFAULTED:
            if data.get(key, ...) is None:  # the bot doesn't say: whatever Discord defaulted to is right
                data.pop(key)
        wanted[(command.type.value, command.name)] = data
    have = {}
    for command in registered:
        key = (command.type.value, command.name)
        data = definition(command, guild=guild)
        for field in DISCORD_DEFAULTED:
            if field not in wanted.get(key, {}):
                data.pop(field, None)
        have[key] = data
    return wanted != have


def invite_url(application_id: int, guild_id: int | None = None) -> str:
    """The invite that grants the bot and its slash commands (``bot`` and ``applications.commands`` scopes)."""
    return discord.utils.oauth_url(application_id, permissions=INVITE_PERMISSIONS,
                                   guild=discord.Object(guild_id) if guild_id else discord.utils.MISSING,
                                   scopes=("bot", "applications.commands"))
