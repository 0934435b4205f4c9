"""Settings: defaults, parsing, and one clear line per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.config import SettingsError, load_settings


def test_defaults_match_the_design():
    settings = load_settings({})
    assert settings.database_url is None and settings.redis_url is None
    assert settings.data_dir == Path("./var")
    assert (
        settings.rate_limit_metadata_per_minute,
        settings.rate_limit_write_per_minute,
        settings.rate_limit_streaming_per_minute,
    ) == (100, 10, 10_000)
    assert settings.hls_segment_seconds == 6
    assert settings.base_url == "http://127.0.0.1:8080"
    assert settings.effective_storage_url.startswith("file://")


def test_environment_is_parsed():
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://u@db/x",
            "REDIS_URL": "redis://r:6379/0",
            "MEDIASERVER_PUBLIC_URL": "https://radio.example/",
            "HLS_SEGMENT_SECONDS": "4",
            "CORS_ALLOW_ORIGINS": "https://a.example, https://b.example",
            "RATE_LIMIT_ENABLED": "false",
            "LOG_LEVEL": "debug",
            "STREAM_KEY_SECRET": "x" * 43,
        }
    )
    assert settings.base_url == "https://radio.example"
    assert settings.cors_allow_origins == ("https://a.example", "https://b.example")
    assert settings.rate_limit_enabled is False and settings.log_level == "DEBUG"
    assert "x" * 43 not in repr(settings)  # secrets never show in logs


def test_empty_values_count_as_unset():
    assert load_settings({"DATABASE_URL": "", "REDIS_URL": ""}).database_url is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"HLS_SEGMENT_SECONDS": "12"},
            "invalid setting HLS_SEGMENT_SECONDS: Input should be less than or equal to 10",
        ),
        (
            {"DATABASE_URL": "mysql://x"},
            "invalid setting DATABASE_URL: must be a postgresql:// URL",
        ),
        ({"REDIS_URL": "http://x"}, "invalid setting REDIS_URL"),
        ({"MEDIASERVER_PORT": "http"}, "invalid setting MEDIASERVER_PORT"),
        ({"RATE_LIMIT_WRITE_PER_MINUTE": "0"}, "invalid setting RATE_LIMIT_WRITE_PER_MINUTE"),
        ({"STORAGE_URL": "ftp://x"}, "invalid setting STORAGE_URL"),
        ({"LOG_LEVEL": "loud"}, "invalid setting LOG_LEVEL"),
        (
            {"TRUSTED_PROXIES": "10.42.0.0/16, ingress"},
            "invalid setting TRUSTED_PROXIES: 'ingress' does not appear to be an IPv4 or IPv6",
        ),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
