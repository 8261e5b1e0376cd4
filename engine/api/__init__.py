"""The engine's HTTP API (aiohttp): what remote frontends and scripts call."""
