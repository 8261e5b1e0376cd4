"""The Discord frontend: answers in chat, threads and forums, talking to the engine only
through its answer protocol (``engine.Engine`` in process, ``engine.client.EngineClient`` apart).

Protocol decisions live in pure modules (:mod:`bot.messages`, :mod:`bot.triggers`); the
discord.py client around them is thin.
"""
