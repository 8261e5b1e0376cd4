"""The buttons under every answer: 👍 / 👎 and "Ask a maintainer".

They are discord.py dynamic items: the custom id carries the answer id
(``fr:vote:up:<answer id>``), so any button ever posted works again after a restart without
the bot remembering anything.

A click is acknowledged first (a deferred update: Discord allows 3 seconds for that, and the
engine may take longer), then recorded, then followed up; whatever fails after the
acknowledgement ends in the bot's private apology (discord.py only logs errors raised in a
dynamic item's callback, so :class:`Acknowledged` routes them to the bot).
"""

from __future__ import annotations

import logging

import discord

from engine.logs import CORRELATION
from engine.protocol import MAX_COMMENT_CHARS, UnknownAnswer

log = logging.getLogger(__name__)
ANSWER_ID = r"[\w-]{1,64}"
COMMENT_MODAL_SECONDS = 900  # a modal left open longer is forgotten (Discord's client then says it failed)


class Acknowledged:
    """A button's callback: acknowledge the click at once, then :meth:`act`; any failure reaches the bot's apology."""

    async def callback(self, interaction: discord.Interaction) -> None:
        CORRELATION.set(f"discord-{interaction.id}")
        await interaction.response.defer()  # a deferred update: no "thinking…", nothing changes on the answer
        try:
            await self.act(interaction)
        except Exception as error:  # the one place a button's failures are turned into an apology
            await interaction.client.interaction_failed(interaction, error, f"button {type(self).__name__}")

    async def act(self, interaction: discord.Interaction) -> None:
        raise NotImplementedError


class VoteButton(Acknowledged, discord.ui.DynamicItem[discord.ui.Button], template=rf"fr:vote:(?P<vote>up|down):(?P<answer>{ANSWER_ID})"):
    def __init__(self, vote: str, answer_id: str) -> None:
        super().__init__(discord.ui.Button(
            emoji="👍" if vote == "up" else "👎", style=discord.ButtonStyle.secondary,
            custom_id=f"fr:vote:{vote}:{answer_id}",
        ))
        self.vote, self.answer_id = vote, answer_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match) -> "VoteButton":
        return cls(match["vote"], match["answer"])

    async def act(self, interaction: discord.Interaction) -> None:
        bot = interaction.client
        bot.count(f"vote_{self.vote}")
        try:
            await bot.answerer.feedback(self.answer_id, f"discord:{interaction.user.id}", 1 if self.vote == "up" else -1)
        except UnknownAnswer:
            log.warning("vote on %s not stored: the engine has no such answer", self.answer_id)
            await interaction.followup.send("Sorry, I couldn't find that answer any more.", ephemeral=True)
            return
        if self.vote == "down":  # as on the Ask page: say what was wrong, if you like (a modal, one press away)
            view = discord.ui.View(timeout=None)
            view.add_item(CommentButton(self.answer_id))
            await interaction.followup.send("Thanks for the feedback!", view=view, ephemeral=True)
            return
        await interaction.followup.send("Thanks for the feedback!", ephemeral=True)


class CommentModal(discord.ui.Modal, title="What was wrong?"):
    """The 👎 comment: sent with the same vote, so the reviewer reads it beside the answer."""

    comment = discord.ui.TextInput(label="What was wrong or missing?", style=discord.TextStyle.paragraph,
                                   max_length=MAX_COMMENT_CHARS, placeholder="Read by the project's maintainers")

    def __init__(self, answer_id: str) -> None:
        super().__init__(custom_id=f"fr:commentform:{answer_id}", timeout=COMMENT_MODAL_SECONDS)
        self.answer_id = answer_id

    async def on_submit(self, interaction: discord.Interaction) -> None:
        CORRELATION.set(f"discord-{interaction.id}")
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = interaction.client
        bot.count("vote_comment")
        try:
            await bot.answerer.feedback(self.answer_id, f"discord:{interaction.user.id}", -1,
                                        self.comment.value.strip() or None)
        except UnknownAnswer:
            await interaction.followup.send("Sorry, I couldn't find that answer any more.", ephemeral=True)
            return
        await interaction.followup.send("Thanks, the maintainers will read it.", ephemeral=True)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        """discord.py's hook for a failed ``on_submit``: the bot's one apology, as for the buttons."""
        await interaction.client.interaction_failed(interaction, error, "modal CommentModal")


class CommentButton(discord.ui.DynamicItem[discord.ui.Button], template=rf"fr:comment:(?P<answer>{ANSWER_ID})"):
    """Opens the comment modal. A modal must be the interaction's first response, so this one isn't deferred."""

    def __init__(self, answer_id: str) -> None:
        super().__init__(discord.ui.Button(label="Say what was wrong", style=discord.ButtonStyle.secondary,
                                           custom_id=f"fr:comment:{answer_id}"))
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match) -> "CommentButton":
        return cls(match["answer"])

    async def callback(self, interaction: discord.Interaction) -> None:
        CORRELATION.set(f"discord-{interaction.id}")
        await interaction.response.send_modal(CommentModal(self.answer_id))


class EscalateButton(Acknowledged, discord.ui.DynamicItem[discord.ui.Button], template=rf"fr:escalate:(?P<answer>{ANSWER_ID})"):
    def __init__(self, answer_id: str) -> None:
        super().__init__(discord.ui.Button(label="Ask a maintainer", style=discord.ButtonStyle.primary,
                                           custom_id=f"fr:escalate:{answer_id}"))
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match) -> "EscalateButton":
        return cls(match["answer"])

    async def act(self, interaction: discord.Interaction) -> None:
        interaction.client.count("escalate")
        await interaction.client.escalate(interaction, self.answer_id)


def answer_view(answer_id: str, *, escalate: bool = True) -> discord.ui.View:
    """👍 / 👎, and "Ask a maintainer" when ``escalate`` (a maintainer role is configured and the answer is public:
    a ping nobody else can see the question of helps no one)."""
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton("up", answer_id))
    view.add_item(VoteButton("down", answer_id))
    if escalate:
        view.add_item(EscalateButton(answer_id))
    return view
