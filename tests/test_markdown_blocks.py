"""engine.markdown.split_blocks: the one fence-aware paragraph splitter (the bot's messages, the extractive quotes)."""

from engine.markdown import split_blocks


def test_paragraphs_split_at_blank_lines_and_fences_stay_whole():
    text = "First para\nstill first.\n\n```py\nx = 1\n\ny = 2\n```\nAfter the code.\n\n\nLast."
    assert split_blocks(text) == ["First para\nstill first.", "```py\nx = 1\n\ny = 2\n```", "After the code.", "Last."]


def test_a_fence_interrupts_prose_and_tildes_fence_too():
    assert split_blocks("Run:\n~~~\na\n\nb\n~~~") == ["Run:", "~~~\na\n\nb\n~~~"]
    assert split_blocks("Run:\n````md\n```\ninner\n```\n````") == ["Run:", "````md\n```\ninner\n```\n````"]


def test_an_unclosed_fence_is_closed_so_the_block_renders():
    assert split_blocks("Code:\n\n```js\nlet a = 1;\n\nlet b;") == ["Code:", "```js\nlet a = 1;\n\nlet b;\n```"]


def test_the_bot_and_the_answerer_split_alike():
    from bot.messages import split_message
    from engine.llm.extractive import units_of

    text = "Intro.\n\n```\n" + "line\n" * 5 + "```\n\nOutro."
    assert split_message(text, limit=10_000) == [text]
    assert "\n\n".join(u.text for u in units_of(text)) == text
