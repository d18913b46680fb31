"""Configuration: one typed source of truth, every option documented."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pagecast.core.settings import ConfigError, Settings, parse_profiles, settings_markdown

DOC = Path(__file__).parent.parent / "docs" / "configuration.md"


def test_every_setting_is_documented_as_generated():
    text = DOC.read_text()
    begin = text.index("-->", text.index("settings-table:begin")) + 4
    end = text.index("<!-- settings-table:end")
    assert text[begin:end] == settings_markdown(), "docs/configuration.md is stale: run pagecast settings --update docs/configuration.md"


def test_env_vars_then_flags_set_values():
    s = Settings.from_env({"PAGECAST_PORT": "9000", "PAGECAST_LOGIN_PATHS": "/a, /b", "PAGECAST_CHROMIUM_SANDBOX": "no"}, port=9100)
    assert s.port == 9100 and s.login_paths == ("/a", "/b") and s.chromium_sandbox is False


@pytest.mark.parametrize(
    "env, message",
    [
        ({"PAGECAST_PORT": "eighty"}, "PAGECAST_PORT='eighty' is not a valid int"),
        ({"PAGECAST_QUALITY": "8k"}, "PAGECAST_QUALITY='8k': use one of"),
        ({"PAGECAST_MODE": "dash"}, "PAGECAST_MODE"),
        ({"PAGECAST_CHROMIUM_SANDBOX": "maybe"}, "not a valid bool"),
        ({"PAGECAST_DEVICE_SCALE_FACTOR": "nan"}, "PAGECAST_DEVICE_SCALE_FACTOR must be between 0.5 and 4"),
    ],
)
def test_invalid_settings_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_profiles_file_errors_name_the_file():
    with pytest.raises(ConfigError, match="profiles.toml is not valid TOML"):
        parse_profiles("[profiles.door\n", "profiles.toml")
    with pytest.raises(ConfigError, match="p.json must map profile names"):
        parse_profiles('{"door": 5}', "p.json")
    assert parse_profiles('[profiles.door]\nurl = "http://x/"\n', "p.toml") == {"door": {"url": "http://x/"}}


async def test_profiles_follow_their_file_and_a_broken_file_keeps_the_last_good_ones(tmp_path, caplog):
    """On Trio's real clock: the file is looked at in a worker thread, which a fake clock
    would not wait for."""
    from pagecast.server.profiles import Profiles

    CHECK_INTERVAL = 0.05
    path = tmp_path / "profiles.toml"
    path.write_text('[profiles.door]\nurl = "http://x/"\n')
    profiles = Profiles(str(path), interval=CHECK_INTERVAL)
    async with trio.open_nursery() as nursery:
        await nursery.start(profiles.run)
        assert profiles.current == {"door": {"url": "http://x/"}} and profiles.health()["error"] is None
        path.write_text("[profiles.door\n")
        with trio.fail_after(5):
            while profiles.error is None:
                await trio.sleep(CHECK_INTERVAL / 4)
        assert profiles.current == {"door": {"url": "http://x/"}}
        assert "not valid TOML" in profiles.health()["error"] and "keeping the 1 profile(s)" in caplog.text
        path.write_text('[profiles.hall]\nurl = "http://y/"\n')
        with trio.fail_after(5):
            while profiles.error is not None:
                await trio.sleep(CHECK_INTERVAL / 4)
        assert profiles.health() == {"file": str(path), "names": ["hall"], "error": None}
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("hosts", ["192.168.1.20:8009", "http://tv.lan", "tv one"])
def test_cast_hosts_must_be_plain_addresses(hosts):
    with pytest.raises(ConfigError, match="PAGECAST_CAST_HOSTS"):
        Settings.from_env({"PAGECAST_CAST_HOSTS": hosts})


def test_recycling_is_on_by_default_and_its_limits_are_checked():
    s = Settings.from_env({})
    assert (s.renderer_max_memory_mb, s.renderer_max_age, s.renderer_check_interval) == (1500, 86400.0, 5.0)
    assert Settings.from_env({"PAGECAST_RENDERER_MAX_AGE": "0", "PAGECAST_RENDERER_MAX_MEMORY_MB": "0"}).renderer_max_age == 0
    with pytest.raises(ConfigError, match="PAGECAST_RENDERER_MAX_MEMORY_MB"):
        Settings.from_env({"PAGECAST_RENDERER_MAX_MEMORY_MB": "-1"})
    with pytest.raises(ConfigError, match="PAGECAST_RENDERER_CHECK_INTERVAL"):
        Settings.from_env({"PAGECAST_RENDERER_CHECK_INTERVAL": "0"})


def test_a_setting_is_named_as_a_user_sets_it():
    from pagecast.core.settings import setting_words

    assert setting_words("load_timeout") == "PAGECAST_LOAD_TIMEOUT (or --load-timeout)"
    with pytest.raises(KeyError):
        setting_words("load_timout")
