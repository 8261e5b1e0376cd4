from pathlib import Path

import pytest

from engine.config import ConfigError, Settings, load_settings


def test_defaults_need_no_environment(monkeypatch):
    for name in ("FIRSTREPLY_KB", "FIRSTREPLY_CHROMA_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(_env_file=None)
    assert settings.kb == "default"
    assert settings.chroma_url is None
    assert settings.kb_dir == Path(".firstreply") / "kb"


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("FIRSTREPLY_KB", "payload")
    monkeypatch.setenv("FIRSTREPLY_URL_MAP", '{"docs/": "https://example.org/docs/"}')
    settings = load_settings(_env_file=None)
    assert settings.kb == "payload"
    assert settings.url_map == {"docs/": "https://example.org/docs/"}


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("FIRSTREPLY_CHROMA_URL", "not a url", "FIRSTREPLY_CHROMA_URL"),
        ("FIRSTREPLY_SEARCH_K", "zero", "FIRSTREPLY_SEARCH_K"),
        ("FIRSTREPLY_ABSTAIN_THRESHOLDS", '{"irc": 0.3}', "FIRSTREPLY_ABSTAIN_THRESHOLDS"),
        ("FIRSTREPLY_PROVIDERS", '["claude:opus"]', "FIRSTREPLY_PROVIDERS"),
        ("FIRSTREPLY_PROVIDERS", '["gemini:gemini-2.5-flash"]', "FIRSTREPLY_GEMINI_API_KEY"),
        ("FIRSTREPLY_API_KEYS", "not-json", "FIRSTREPLY_API_KEYS"),
        ("FIRSTREPLY_KB", "bad name!", "FIRSTREPLY_KB"),
        ("FIRSTREPLY_EMBEDDING_SHA256", "abc", "FIRSTREPLY_EMBEDDING_SHA256"),
        ("FIRSTREPLY_DISCORD_GUILD_IDS", "123,general", "FIRSTREPLY_DISCORD_GUILD_IDS"),
        ("FIRSTREPLY_DISCORD_GUILD_IDS", "[123,", "FIRSTREPLY_DISCORD_GUILD_IDS"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(monkeypatch, variable, value, named):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings(_env_file=None)
    message = str(raised.value)
    assert "\n" not in message
    assert named in message
    assert message.startswith("bad setting ")


@pytest.mark.parametrize(("value", "ids"), [("", []), ("123", [123]), ("123, 456", [123, 456]), ("[123, 456]", [123, 456])])
def test_discord_guild_ids_are_a_comma_list_or_json(monkeypatch, value, ids):
    monkeypatch.setenv("FIRSTREPLY_DISCORD_GUILD_IDS", value)
    assert load_settings(_env_file=None).discord_guild_ids == ids


def test_env_file_is_read(tmp_path, monkeypatch):
    monkeypatch.delenv("FIRSTREPLY_KB", raising=False)
    env = tmp_path / ".env"
    env.write_text("FIRSTREPLY_KB=from-dotenv\n")
    assert Settings(_env_file=env).kb == "from-dotenv"


def test_the_env_example_names_every_setting():
    from pathlib import Path

    example = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    missing = [f"FIRSTREPLY_{name.upper()}" for name in Settings.model_fields if f"FIRSTREPLY_{name.upper()}=" not in example]
    assert missing == []
