"""The one exception tree services raise; the envelope (`control/envelope.py`) renders each as
`{"error": message, "code": status}` (plus optional `details`)."""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """Base of every error a client may see. `message` is shown to the client verbatim."""

    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "An unexpected error occurred"
    #: The connection is closed after the answer (the rest of the request is not read).
    closes_connection: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.status}
        if self.details is not None:
            body["details"] = self.details
        return body


class InvalidInput(ServiceError):
    status = 400
    default_message = "Invalid request body"


class Unauthenticated(ServiceError):
    status = 401
    default_message = "Authentication required"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="mediaserver"'})
        super().__init__(message, **kwargs)


class PaymentRequired(ServiceError):
    status = 402
    default_message = "Payment failed"


class Forbidden(ServiceError):
    status = 403
    default_message = "Access denied"


class SubscriptionRequired(Forbidden):
    """The paywall (403 "Subscription required"), naming where the owner's plans are."""

    def __init__(self, owner_id: object, plans_url: str) -> None:
        super().__init__("Subscription required")
        self.owner_id = str(owner_id)
        self.plans_url = plans_url

    def body(self) -> dict[str, Any]:
        return {**super().body(), "owner_id": self.owner_id, "plans_url": self.plans_url}


class NotFound(ServiceError):
    status = 404
    default_message = "Not found"


class Conflict(ServiceError):
    status = 409
    default_message = "Conflict"


class Gone(ServiceError):
    status = 410
    default_message = "Gone"


class RequestTimeout(ServiceError):
    """The client stopped sending its request body (RFC 9110 §15.5.9)."""

    status = 408
    default_message = "The request body did not arrive in time"
    closes_connection = True


class TooLarge(ServiceError):
    status = 413
    default_message = "Request body is too large"


class Unprocessable(ServiceError):
    status = 422
    default_message = "Unprocessable entity"


class RateLimited(ServiceError):
    status = 429

    def __init__(self, retry_after: int) -> None:
        retry_after = max(1, retry_after)
        super().__init__(
            f"Rate limit exceeded. Try again in {retry_after} second"
            f"{'' if retry_after == 1 else 's'}.",
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after


class UpstreamUnavailable(ServiceError):
    status = 503
    default_message = "A service this request depends on is unavailable"


class NotConfigured(ServiceError):
    """A feature this node was not configured for (its setting is unset)."""

    status = 503
    default_message = "This feature is not configured on this server"
