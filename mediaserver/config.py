"""All settings of a node, read from the environment in one place.

`load_settings(environ)` is the only reader of environment variables in the project;
everything else receives the frozen `Settings` it returns. A bad value raises
`SettingsError` with one line naming the variable, which the CLI prints before exiting.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

#: Environment variable → field name. The variable names are a public contract (DESIGN.md).
ENVIRONMENT: dict[str, str] = {
    "DATABASE_URL": "database_url",
    "REDIS_URL": "redis_url",
    "MEDIASERVER_DATA_DIR": "data_dir",
    "MEDIASERVER_PUBLIC_URL": "public_url",
    "MEDIASERVER_HOST": "host",
    "MEDIASERVER_PORT": "port",
    "STORAGE_URL": "storage_url",
    "S3_ENDPOINT_URL": "s3_endpoint_url",
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_REGION": "aws_region",
    "JWT_PRIVATE_KEY_PATH": "jwt_private_key_path",
    "JWT_PUBLIC_KEY_PATH": "jwt_public_key_path",
    "JWT_ISSUER": "jwt_issuer",
    "ACCESS_TOKEN_TTL_SECONDS": "access_token_ttl_seconds",
    "REFRESH_TOKEN_TTL_DAYS": "refresh_token_ttl_days",
    "STREAM_KEY_SECRET": "stream_key_secret",
    "RELAY_SERVICE_TOKEN": "relay_service_token",
    "RATE_LIMIT_ENABLED": "rate_limit_enabled",
    "RATE_LIMIT_METADATA_PER_MINUTE": "rate_limit_metadata_per_minute",
    "RATE_LIMIT_WRITE_PER_MINUTE": "rate_limit_write_per_minute",
    "RATE_LIMIT_STREAMING_PER_MINUTE": "rate_limit_streaming_per_minute",
    "RATE_LIMIT_LOGIN_PER_EMAIL_PER_MINUTE": "rate_limit_login_per_email_per_minute",
    "RATE_LIMIT_LOGIN_PER_IP_PER_MINUTE": "rate_limit_login_per_ip_per_minute",
    "RATE_LIMIT_AUTH_PER_IP_PER_MINUTE": "rate_limit_auth_per_ip_per_minute",
    "HLS_SEGMENT_SECONDS": "hls_segment_seconds",
    "PLAY_URL_TTL_SECONDS": "play_url_ttl_seconds",
    "RELAY_GRACE_SECONDS": "relay_grace_seconds",
    "LISTENER_RECHECK_SECONDS": "listener_recheck_seconds",
    "RELAY_BURST_BYTES": "relay_burst_bytes",
    "RELAY_LISTENER_BACKLOG_BYTES": "relay_listener_backlog_bytes",
    "ICY_METAINT": "icy_metaint",
    "RELAY_BATCH_SECONDS": "relay_batch_seconds",
    "RELAY_HEARTBEAT_SECONDS": "relay_heartbeat_seconds",
    "MEDIASERVER_DEMO": "demo",
    "NODE_NAME": "node_name",
    "MEDIASERVER_INTERNAL_URL": "internal_url",
    "MEDIASERVER_NODE_URL": "node_url",
    "CLUSTER_LEASE_SECONDS": "cluster_lease_seconds",
    "RELAY_CONNECT_WAIT_SECONDS": "relay_connect_wait_seconds",
    "INGEST_PORT": "ingest_port",
    "CORS_ALLOW_ORIGINS": "cors_allow_origins",
    "LOG_LEVEL": "log_level",
    "TRUST_FORWARDED_FOR": "trust_forwarded_for",
    "TRUSTED_PROXIES": "trusted_proxies",
    "MAX_JSON_BODY_BYTES": "max_json_body_bytes",
    "HEADER_READ_TIMEOUT_SECONDS": "header_read_timeout_seconds",
    "STORE_SWEEP_INTERVAL_SECONDS": "store_sweep_interval_seconds",
    "STORE_ORPHAN_AGE_SECONDS": "store_orphan_age_seconds",
    "BODY_READ_TIMEOUT_SECONDS": "body_read_timeout_seconds",
    "PASSWORD_HASH_PROFILE": "password_hash_profile",
    "UPLOAD_MAX_BYTES": "upload_max_bytes",
    "UPLOAD_HLS_SECONDS": "upload_hls_seconds",
    "TRACK_MAX_BYTES": "track_max_bytes",
    "TRACK_MAX_SECONDS": "track_max_seconds",
    "TRACK_MIN_SAMPLE_RATE": "track_min_sample_rate",
    "TRACK_MIN_MP3_KBPS": "track_min_mp3_kbps",
    "TRACK_ARTWORK_MAX_BYTES": "track_artwork_max_bytes",
    "MEDIA_CACHE_BYTES": "media_cache_bytes",
    "JOB_WORKERS": "job_workers",
    "JOB_LEASE_SECONDS": "job_lease_seconds",
    "JOB_BACKOFF_SECONDS": "job_backoff_seconds",
    "ALLOW_PRIVATE_MEDIA_URLS": "allow_private_media_urls",
    "METRICS_TOKEN": "metrics_token",
    "EXTERNAL_TRACK_MAX_BYTES": "external_track_max_bytes",
    "EXTERNAL_TRACK_CHECK_SECONDS": "external_track_check_seconds",
    "EXTERNAL_TRACK_FETCH_SECONDS": "external_track_fetch_seconds",
    "DOMAIN_VERIFY_DELAY_SECONDS": "domain_verify_delay_seconds",
    "PODCAST_FEED_GRANT_DAYS": "podcast_feed_grant_days",
    "PAYMENT_PROVIDER": "payment_provider",
    "STRIPE_API_KEY": "stripe_api_key",
    "STRIPE_WEBHOOK_SECRET": "stripe_webhook_secret",
    "STRIPE_API_BASE": "stripe_api_base",
    "DOMAIN_VERIFIER": "domain_verifier",
    "DNS_RESOLVER": "dns_resolver",
    "SMTP_URL": "smtp_url",
    "MAIL_FROM": "mail_from",
    "PASSWORD_RESET_TTL_MINUTES": "password_reset_ttl_minutes",
    "EMAIL_VERIFY_TTL_HOURS": "email_verify_ttl_hours",
    "REQUIRE_VERIFIED_EMAIL": "require_verified_email",
    "RATE_LIMIT_LOGIN_FAILURES_PER_EMAIL_PER_HOUR": "rate_limit_login_failures_per_email_per_hour",
    "RATE_LIMIT_PASSWORD_RESET_PER_EMAIL_PER_HOUR": "rate_limit_password_reset_per_email_per_hour",
}


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming the variable."""


class Settings(BaseModel):
    """Frozen configuration of one node. Field docs double as the README's settings table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = Path("./var")
    public_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    storage_url: str | None = None
    s3_endpoint_url: str | None = None
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_region: str = "us-east-1"
    jwt_private_key_path: Path | None = None
    jwt_public_key_path: Path | None = None
    jwt_issuer: str = "mediaserver"
    access_token_ttl_seconds: int = Field(86_400, ge=60)
    refresh_token_ttl_days: int = Field(30, ge=1)
    stream_key_secret: SecretStr | None = None
    relay_service_token: SecretStr | None = None
    #: When set, `GET /metrics` answers only `Authorization: Bearer <this>` (Prometheus's
    #: `authorization` / `bearer_token_file`); unset, anyone who reaches the node reads it.
    metrics_token: SecretStr | None = None
    rate_limit_enabled: bool = True
    rate_limit_metadata_per_minute: int = Field(100, ge=1)
    rate_limit_write_per_minute: int = Field(10, ge=1)
    rate_limit_streaming_per_minute: int = Field(10_000, ge=1)
    rate_limit_login_per_email_per_minute: int = Field(5, ge=1)
    rate_limit_login_per_ip_per_minute: int = Field(20, ge=1)
    #: register, refresh and logout, per IP (login has the two limits above instead).
    rate_limit_auth_per_ip_per_minute: int = Field(60, ge=1)
    hls_segment_seconds: int = Field(6, ge=1, le=10)
    #: Lifetime of the signed `play_urls` (`?grant=`) that `GET /v1/streams/{id}` gives a
    #: caller allowed to listen to a private or monetized stream, for players that cannot
    #: send an Authorization header.
    play_url_ttl_seconds: int = Field(6 * 3600, ge=60, le=7 * 86_400)
    #: MP3 listeners stay connected through source outages up to this long.
    relay_grace_seconds: float = Field(30.0, ge=0, le=3600)
    #: An MP3 listener of a private or paid stream is checked again this often (its
    #: subscription may lapse, its account go): refused, its response ends.
    listener_recheck_seconds: float = Field(60.0, ge=0.1, le=3600)
    #: Recent audio sent at once to a new listener so playback starts immediately.
    relay_burst_bytes: int = Field(64 * 1024, ge=0, le=1 << 20)
    #: A listener more than this far behind is dropped (Icecast's queue-size).
    relay_listener_backlog_bytes: int = Field(512 * 1024, ge=64 * 1024)
    icy_metaint: int = Field(16_000, ge=1024, le=65_536)
    #: Audio gathered before one broadcast write to every listener: the fan-out's CPU is
    #: mostly one send() per listener per batch (tests/bench/bench_fanout.py).
    relay_batch_seconds: float = Field(0.5, ge=0.1, le=2.0)
    #: How often an in-process relay records its figures (heartbeat, status, and one
    #: listener sample for the analytics; US-2.4 says every 30 s).
    relay_heartbeat_seconds: float = Field(30.0, ge=0.1, le=300)
    #: Also run the built-in demo source and register it (`serve --demo`).
    demo: bool = False
    #: This node's name in the cluster (the pod name under the chart).
    node_name: str = Field(default_factory=socket.gethostname, min_length=1)
    #: How the other nodes reach this one (default: http://<host>:<port>); announced with
    #: the public URL, to which listeners are redirected.
    internal_url: str | None = None
    #: This node's own public URL, where listeners of the streams it relays are redirected
    #: in a cluster (default: MEDIASERVER_PUBLIC_URL). Links the node hands out (play URLs,
    #: feeds, enclosures) keep MEDIASERVER_PUBLIC_URL, the site's, so they outlive any node.
    node_url: str | None = None
    #: With REDIS_URL: a node that stops renewing (crash) loses its membership and its
    #: streams' leases after this long; renewed every third of it. A crashed node's
    #: streams are audible again from another node within about 1.5 times this.
    cluster_lease_seconds: float = Field(5.0, ge=1.0, le=60.0)
    #: A listener who arrives while the stream's relay is connecting (just registered,
    #: being taken over) is held this long before being refused.
    relay_connect_wait_seconds: float = Field(5.0, ge=0.0, le=60.0)
    #: Where DJs' encoders push audio (the Icecast source protocol: `SOURCE` and `PUT`),
    #: e.g. 8000, Icecast's port, what BUTT and Mixxx suggest. Unset: no push streams.
    ingest_port: int | None = Field(None, ge=1, le=65535)
    cors_allow_origins: tuple[str, ...] = ("*",)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: Take the client's address from `X-Forwarded-For`, read right to left through
    #: `trusted_proxies` (control/forwarded.py); off: the TCP peer's address.
    trust_forwarded_for: bool = False
    #: The reverse proxies (CIDRs) whose `X-Forwarded-For` entries are believed when
    #: `trust_forwarded_for` is on; empty: the private and loopback ranges.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    max_json_body_bytes: int = Field(1 << 20, ge=1024)
    #: A connection must deliver a whole request head (line and headers) this long after it
    #: opens or its previous response; also how long an idle keep-alive connection is kept.
    header_read_timeout_seconds: float = Field(30.0, gt=0, le=3600)
    #: A JSON body must arrive whole within this; an upload may pause this long between
    #: chunks (slow links still finish, a client that stops sending does not hold on).
    body_read_timeout_seconds: float = Field(30.0, gt=0, le=3600)
    #: "fast" lowers argon2 cost; only for test suites that register many users.
    password_hash_profile: Literal["default", "fast"] = "default"  # noqa: S105
    #: Larger uploaded files are refused with 413 while they are being received.
    upload_max_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    #: Target segment duration of uploads turned into HLS (VOD).
    upload_hls_seconds: int = Field(10, ge=1, le=60)
    #: Tracks (`POST /v1/tracks`, the tracks spec's limits): larger audio files are refused
    #: with 413 while they are received; longer, lower-rate or (MP3) lower-bitrate audio
    #: with 400 once parsed.
    track_max_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    track_max_seconds: float = Field(600.0, gt=0, le=86_400)
    track_min_sample_rate: int = Field(22_050, ge=1, le=384_000)
    track_min_mp3_kbps: int = Field(128, ge=8, le=320)
    #: A track's uploaded cover image (the `artwork` part).
    track_artwork_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    #: Memory for the HLS objects of uploads and playlists (segments, manifests) the node
    #: serves most; they never change, so each is read from the object store once. 0: none.
    media_cache_bytes: int = Field(64 * 1024 * 1024, ge=0)
    #: How often the object store is swept of what interrupted uploads left (partial
    #: `.tmp-` files, empty directories, unfinished S3 multipart uploads); 0: never.
    store_sweep_interval_seconds: float = Field(3600.0, ge=0, le=86_400 * 7)
    #: Only leftovers older than this are swept: an upload still being received is younger.
    store_orphan_age_seconds: float = Field(6 * 3600.0, ge=1, le=86_400 * 30)
    #: Background jobs (transcoding…) run at once on this node; 0 runs none here.
    job_workers: int = Field(2, ge=0, le=64)
    #: A running job whose node stops renewing its lease this long is picked up again.
    job_lease_seconds: float = Field(60.0, ge=0.5, le=3600)
    #: First retry delay of a failed job; doubled per attempt (capped at 10 minutes).
    job_backoff_seconds: float = Field(2.0, ge=0, le=600)
    #: Let external media URLs (episodes, playlist tracks) resolve to private, loopback or
    #: link-local addresses. Off in production: the server must not fetch internal URLs.
    allow_private_media_urls: bool = False
    #: External playlist tracks are fetched once into the object store; larger ones fail.
    external_track_max_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    #: Time allowed for the HEAD check of an external track when a playlist is saved.
    external_track_check_seconds: float = Field(10.0, gt=0, le=120)
    #: Time allowed for fetching one external track (the whole download).
    external_track_fetch_seconds: float = Field(600.0, gt=0, le=86_400)
    #: The staging domain verifier reports a custom domain verified (and its TLS certificate
    #: issued) this long after registration.
    domain_verify_delay_seconds: float = Field(60.0, ge=0, le=86_400)
    #: Private podcast feed URLs (`GET /v1/podcasts/{id}/feed-url`) work this long; they stop
    #: earlier once their subscriber may no longer read the feed.
    podcast_feed_grant_days: int = Field(365, ge=1, le=3650)
    #: Who charges for plans and subscriptions: "stripe", or "stub" (staging and demos:
    #: every payment method but "fail_pm" is accepted, for free). Unset (production's
    #: default until configured): the plan and subscription routes answer 503.
    payment_provider: Literal["stub", "stripe"] | None = None
    #: With PAYMENT_PROVIDER=stripe: the secret API key (required).
    stripe_api_key: SecretStr | None = Field(None, validate_default=True)
    #: With PAYMENT_PROVIDER=stripe: the signing secret of the webhook endpoint
    #: `/v1/monetization/stripe/webhook` (required).
    stripe_webhook_secret: SecretStr | None = Field(None, validate_default=True)
    #: Where the Stripe API is reached (default Stripe's own); tests point it at a fake.
    stripe_api_base: str | None = None
    #: How custom domains are verified: "dns" (the TXT challenge record, looked up through
    #: DNS_RESOLVER), or "stub" (staging: any host name is verified
    #: DOMAIN_VERIFY_DELAY_SECONDS after registration). Unset: the domain routes answer 503.
    domain_verifier: Literal["stub", "dns"] | None = None
    #: With DOMAIN_VERIFIER=dns: the resolver asked, as host:port (default: the system's).
    dns_resolver: tuple[str, int] | None = None
    #: Outgoing mail: `smtp://user:password@host:587` (STARTTLS when the server offers it)
    #: or `smtps://…:465` (TLS from the start). Unset: mails are written to the log at INFO.
    smtp_url: SecretStr | None = None
    #: The `From` of every mail (default: `noreply@` the public URL's host).
    mail_from: str | None = None
    #: A password-reset link works once, for this long.
    password_reset_ttl_minutes: int = Field(30, ge=1, le=24 * 60)
    #: An email-verification link works once, for this long.
    email_verify_ttl_hours: int = Field(48, ge=1, le=30 * 24)
    #: Stream registration and uploads wait until the account's email is verified.
    require_verified_email: bool = False
    #: Wrong passwords for one email from every address together; once spent, only an
    #: address with no recent failures for that email may still try (login is limited per
    #: (email, address) by RATE_LIMIT_LOGIN_PER_EMAIL_PER_MINUTE and per address).
    rate_limit_login_failures_per_email_per_hour: int = Field(50, ge=1)
    #: Reset mails sent to one address; further requests still answer 202, sending nothing.
    rate_limit_password_reset_per_email_per_hour: int = Field(3, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _demo_reaches_its_source(cls, data: Any) -> Any:
        # `serve --demo` registers its own source on loopback, which the URL guard refuses
        # unless private addresses are allowed: the demo allows them unless told otherwise.
        if isinstance(data, dict) and data.get("demo") and "allow_private_media_urls" not in data:
            return {**data, "allow_private_media_urls": True}
        return data

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("postgres", "postgresql"):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis:// or rediss:// URL")
        return value

    @field_validator("public_url", "internal_url", "node_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("stripe_api_key", "stripe_webhook_secret")
    @classmethod
    def _stripe_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("payment_provider") == "stripe" and not value:
            raise ValueError("required with PAYMENT_PROVIDER=stripe")
        return value

    @field_validator("stripe_api_base")
    @classmethod
    def _api_base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("dns_resolver", mode="before")
    @classmethod
    def _host_port(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        host, sep, port = value.strip().rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, such as 127.0.0.1:53")
        return host, int(port)

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("must be an smtp:// or smtps:// URL with a host")
        return value

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("file", "s3"):
            raise ValueError("must be a file:// or s3:// URL")
        return value

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return tuple(
                ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()
            )
        except ValueError as exc:
            raise ValueError(
                f"{exc} (expected CIDRs such as 10.0.0.0/8, comma-separated)"
            ) from None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @property
    def base_url(self) -> str:
        """Base of every absolute URL the node hands out."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def sender(self) -> str:
        """The `From` of the node's mails."""
        return self.mail_from or f"noreply@{urlsplit(self.base_url).hostname or 'localhost'}"

    @property
    def peer_url(self) -> str:
        """How the other nodes of a cluster reach this one."""
        return self.internal_url or f"http://{self.host}:{self.port}"

    @property
    def effective_storage_url(self) -> str:
        return self.storage_url or (self.data_dir.resolve() / "objects").as_uri()


def load_settings(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """Build `Settings` from environment variables (empty values count as unset).

    `overrides` (field names) win over the environment; the CLI uses them for flags.
    """
    values: dict[str, Any] = {
        field: environ[name] for name, field in ENVIRONMENT.items() if environ.get(name, "") != ""
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        name = next((n for n, f in ENVIRONMENT.items() if f == field), field)
        message = str(error["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"invalid setting {name}: {message}") from None


#: Where the app keeps its `Settings`.
SETTINGS = web.AppKey("settings", Settings)
