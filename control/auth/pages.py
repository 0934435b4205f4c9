"""The two pages the account mails link to, so a link clicked in a mail client works with
no other front end: plain HTML forms (no script) that post back here.

A GET never spends a token: mail scanners and link previews fetch links before people do,
so the page asks for a click (verification) or a new password (reset) first."""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qsl

from aiohttp import web
from pydantic import ValidationError

from control.api import Api, describe_error
from control.auth.recovery import ACCOUNT_MAIL, RESET_PATH, VERIFY_PATH
from control.auth.schemas import PasswordResetConfirmIn, VerifyEmailIn
from control.forwarded import CLIENT_ADDRESS
from control.inputs import read_body
from mediaserver.config import SETTINGS
from mediaserver.errors import InvalidInput

api = Api()

# The envelope's API default is `default-src 'none'`; these pages need their own styles
# and may post only to this site.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
_STYLE = (
    "body{font-family:sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5}input,button{font-size:1rem;padding:.4rem;margin:.3rem 0;width:100%}"
)


def _page(title: str, body: str, status: int = 200) -> web.Response:
    html = (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body><h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )
    headers = {"Content-Security-Policy": _CSP, "Cache-Control": "no-store"}
    # The token is in the URL: it must not leak to other sites through Referer.
    headers["Referrer-Policy"] = "no-referrer"
    return web.Response(text=html, content_type="text/html", status=status, headers=headers)


def _token_field(token: str) -> str:
    return f'<input type="hidden" name="token" value="{escape(token, quote=True)}">'


_FORM_TYPE = "application/x-www-form-urlencoded"


async def _form(request: web.Request) -> dict[str, str]:
    """The fields the page's form posts (what a browser sends for it), read within the JSON
    bodies' size and time limits (413, 408); anything else is an `InvalidInput`."""
    if request.content_type != _FORM_TYPE:
        raise InvalidInput(f"This form is posted as {_FORM_TYPE}.")
    settings = request.app[SETTINGS]
    raw = await read_body(request, settings.max_json_body_bytes, settings.body_read_timeout_seconds)
    try:
        return dict(parse_qsl(raw.decode(), max_num_fields=16, errors="strict"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("The form's fields are not valid UTF-8 form data.") from None


def _refused(exc: InvalidInput) -> web.Response:
    return _page("This link does not work", f"<p>{escape(exc.message)}</p>", 400)


@api.get(
    RESET_PATH,
    summary="The page a password-reset mail links to (HTML form)",
    tag="auth",
    auth="none",
    rate="auth",
    produces="text/html",
    errors=(429,),
)
async def reset_form(request: web.Request) -> web.Response:
    return _reset_form(request.query.get("token", ""))


def _reset_form(token: str, error: str | None = None) -> web.Response:
    problem = f"<p><strong>{escape(error)}</strong></p>" if error else ""
    return _page(
        "Choose a new password",
        f'{problem}<form method="post" action="{RESET_PATH}">{_token_field(token)}'
        '<label>New password<input type="password" name="new_password" required '
        'autocomplete="new-password" minlength="8"></label>'
        "<p>At least 8 characters, with an uppercase letter, a lowercase letter and a "
        "number. Every session of the account is signed out.</p>"
        "<button>Set the new password</button></form>",
        400 if error else 200,
    )


@api.post(
    RESET_PATH,
    summary="Set the new password from the reset page's form",
    description="A refused token or password answers 400 with the form again, saying why.",
    tag="auth",
    auth="none",
    rate="auth",
    produces="text/html",
    form=PasswordResetConfirmIn,
    errors=(400, 413, 429),
)
async def reset_submit(request: web.Request) -> web.Response:
    try:
        form = await _form(request)
    except InvalidInput as exc:
        return _refused(exc)
    token = form.get("token", "")[:512]
    try:
        body = PasswordResetConfirmIn(token=token, new_password=form.get("new_password", ""))
    except ValidationError as exc:
        return _reset_form(token, describe_error(exc.errors()[0], "body"))
    try:
        ip = request.app[CLIENT_ADDRESS](request)
        await request.app[ACCOUNT_MAIL].confirm_reset(body.token, body.new_password, ip)
    except InvalidInput as exc:
        return _refused(exc)
    return _page("Password changed", "<p>Sign in with your new password.</p>")


@api.get(
    VERIFY_PATH,
    summary="The page a verification mail links to (HTML form)",
    tag="auth",
    auth="none",
    rate="auth",
    produces="text/html",
    errors=(429,),
)
async def verify_form(request: web.Request) -> web.Response:
    token = request.query.get("token", "")
    return _page(
        "Confirm your email address",
        f'<form method="post" action="{VERIFY_PATH}">{_token_field(token)}'
        "<button>Confirm my email address</button></form>",
    )


@api.post(
    VERIFY_PATH,
    summary="Confirm the email from the verification page's form",
    description="A used, expired or unknown token answers 400 with a page saying which.",
    tag="auth",
    auth="none",
    rate="auth",
    produces="text/html",
    form=VerifyEmailIn,
    errors=(400, 413, 429),
)
async def verify_submit(request: web.Request) -> web.Response:
    try:
        form = await _form(request)
        await request.app[ACCOUNT_MAIL].verify_email(form.get("token", "")[:512])
    except InvalidInput as exc:
        return _refused(exc)
    return _page("Email address confirmed", "<p>Thank you: your address is confirmed.</p>")
