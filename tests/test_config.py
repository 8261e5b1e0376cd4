from pathlib import Path

import pytest

from engine.config import FLAT, ConfigError, GitHubSettings, Settings, load_settings, variables


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
    example = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    missing = [variable for variable in variables() if f"{variable}=" not in example]
    assert missing == []
    assert len(variables()) == len(set(variables())) == len(FLAT)


def test_each_part_reads_its_own_prefix_and_the_names_stay_as_they_were(monkeypatch):
    monkeypatch.setenv("FIRSTREPLY_GITHUB_SECONDARY_LIMIT_SECONDS", "90")
    monkeypatch.setenv("FIRSTREPLY_DISCORD_HELP_CHANNELS", "[1, 2]")
    monkeypatch.setenv("FIRSTREPLY_MAX_BODY_BYTES", "2048")
    settings = load_settings(_env_file=None)
    assert settings.github.secondary_limit_seconds == 90 == settings.github_secondary_limit_seconds
    assert settings.discord.help_channels == [1, 2] == settings.discord_help_channels
    assert settings.web.max_body_bytes == 2048
    assert GitHubSettings(_env_file=None).secondary_limit_seconds == 90  # a frontend can read its part alone
    assert "FIRSTREPLY_GITHUB_SECONDARY_LIMIT_SECONDS" in variables() and "FIRSTREPLY_DISCORD_TOKEN" in variables()


def test_overrides_go_by_flat_name_and_a_misspelt_one_is_refused():
    settings = load_settings(_env_file=None, github_workers=3, kb="docs")
    assert (settings.github.workers, settings.core.kb) == (3, "docs")
    assert settings.replace(kb="other").core.kb == "other" and settings.core.kb == "docs"
    with pytest.raises(ConfigError, match="FIRSTREPLY_KB"):
        settings.replace(kb="bad name!")
    with pytest.raises(TypeError, match="github_worker"):
        load_settings(_env_file=None, github_worker=3)
    with pytest.raises(AttributeError):
        settings.github_worker  # noqa: B018


def test_bad_settings_of_several_parts_are_all_named_on_one_line(monkeypatch):
    monkeypatch.setenv("FIRSTREPLY_GITHUB_WORKERS", "0")
    monkeypatch.setenv("FIRSTREPLY_PORT", "http")
    with pytest.raises(ConfigError) as raised:
        load_settings(_env_file=None)
    message = str(raised.value)
    assert "\n" not in message and "FIRSTREPLY_GITHUB_WORKERS" in message and "FIRSTREPLY_PORT" in message
