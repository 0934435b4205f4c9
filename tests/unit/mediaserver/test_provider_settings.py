"""PAYMENT_PROVIDER, DOMAIN_VERIFIER and their settings: off unless named, checked at
start-up, and `--demo` turns the stubs on."""

from __future__ import annotations

import pytest

from mediaserver.config import SettingsError, load_settings
from mediaserver.demo import with_stubs


def test_both_are_off_unless_named() -> None:
    settings = load_settings({})
    assert settings.payment_provider is None and settings.domain_verifier is None
    assert with_stubs(settings).payment_provider == "stub"
    assert with_stubs(settings).domain_verifier == "stub"


def test_a_demo_keeps_a_provider_it_was_given() -> None:
    env = {
        "PAYMENT_PROVIDER": "stripe",
        "STRIPE_API_KEY": "sk_test_1",
        "STRIPE_WEBHOOK_SECRET": "whsec_1",
        "STRIPE_API_BASE": "http://127.0.0.1:9/",
        "DOMAIN_VERIFIER": "dns",
        "DNS_RESOLVER": "[::1]:5353",
    }
    settings = with_stubs(load_settings(env))
    assert (settings.payment_provider, settings.domain_verifier) == ("stripe", "dns")
    assert settings.stripe_api_base == "http://127.0.0.1:9"
    assert settings.dns_resolver == ("::1", 5353)
    assert "sk_test_1" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PAYMENT_PROVIDER": "paypal"}, "invalid setting PAYMENT_PROVIDER: Input should be"),
        (
            {"PAYMENT_PROVIDER": "stripe", "STRIPE_WEBHOOK_SECRET": "whsec_1"},
            "invalid setting STRIPE_API_KEY: required with PAYMENT_PROVIDER=stripe",
        ),
        (
            {"PAYMENT_PROVIDER": "stripe", "STRIPE_API_KEY": "sk_1"},
            "invalid setting STRIPE_WEBHOOK_SECRET: required with PAYMENT_PROVIDER=stripe",
        ),
        ({"STRIPE_API_BASE": "localhost:12111"}, "invalid setting STRIPE_API_BASE: must be"),
        ({"DOMAIN_VERIFIER": "http"}, "invalid setting DOMAIN_VERIFIER: Input should be"),
        ({"DNS_RESOLVER": "127.0.0.1"}, "invalid setting DNS_RESOLVER: must be host:port"),
        ({"DNS_RESOLVER": "127.0.0.1:70000"}, "invalid setting DNS_RESOLVER: must be host:port"),
    ],
)
def test_bad_values_fail_at_start_up(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(env)
    assert str(raised.value).startswith(message), str(raised.value)
