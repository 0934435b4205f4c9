"""Secrets are generated once into the data dir and reused; bad ones fail at start-up."""

from __future__ import annotations

import stat

import pytest

from mediaserver.config import SettingsError, load_settings
from mediaserver.keys import load_secrets


def test_generated_once_then_reused(tmp_path):
    settings = load_settings({}, data_dir=tmp_path)
    first, again = load_secrets(settings), load_secrets(settings)
    assert first == again
    assert first.jwt_private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert len(first.stream_key_secret) == 32 and len(first.relay_service_token) >= 32
    for name in ("jwt_private.pem", "stream_key_secret", "relay_service_token"):
        assert stat.S_IMODE((tmp_path / "keys" / name).stat().st_mode) == 0o600


def test_given_secrets_win(tmp_path):
    import base64

    key = base64.urlsafe_b64encode(b"k" * 32).decode()
    settings = load_settings(
        {"STREAM_KEY_SECRET": key, "RELAY_SERVICE_TOKEN": "tok"}, data_dir=tmp_path
    )
    secrets = load_secrets(settings)
    assert secrets.stream_key_secret == b"k" * 32 and secrets.relay_service_token == "tok"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STREAM_KEY_SECRET": "short"}, "invalid setting STREAM_KEY_SECRET"),
        ({"JWT_PRIVATE_KEY_PATH": "/nonexistent/key.pem"}, "set both or neither"),
        (
            {
                "JWT_PRIVATE_KEY_PATH": "/nonexistent/a.pem",
                "JWT_PUBLIC_KEY_PATH": "/nonexistent/b.pem",
            },
            "invalid setting JWT_PRIVATE_KEY_PATH: cannot read",
        ),
    ],
)
def test_bad_secrets_fail_with_one_line(tmp_path, env, message):
    with pytest.raises(SettingsError, match=message):
        load_secrets(load_settings(env, data_dir=tmp_path))


def test_non_pem_key_file(tmp_path):
    (tmp_path / "a.pem").write_text("hello")
    env = {
        "JWT_PRIVATE_KEY_PATH": str(tmp_path / "a.pem"),
        "JWT_PUBLIC_KEY_PATH": str(tmp_path / "a.pem"),
    }
    with pytest.raises(SettingsError, match="not a PEM key"):
        load_secrets(load_settings(env, data_dir=tmp_path))
