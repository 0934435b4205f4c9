"""The account mails (password reset, email verification): plain text and HTML."""

from __future__ import annotations

from html import escape

from mediaserver.mail import Mail


def _html(greeting: str, lead: str, link: str, action: str, footer: str) -> str:
    href = escape(link, quote=True)
    return (
        '<!doctype html>\n<html><body style="font-family: sans-serif; line-height: 1.5">\n'
        f"<p>{escape(greeting)}</p>\n<p>{escape(lead)}</p>\n"
        f'<p><a href="{href}" style="font-weight: bold">{escape(action)}</a></p>\n'
        f"<p>If the button does not work, copy this address into your browser:<br>{escape(link)}"
        f'</p>\n<p style="color: #666">{escape(footer)}</p>\n</body></html>\n'
    )


def password_reset(to: str, name: str, link: str, ttl_minutes: int) -> Mail:
    greeting = f"Hello {name},"
    lead = (
        "Someone (we hope you) asked to reset the password of your account. "
        f"The link below works once, for {ttl_minutes} minutes."
    )
    footer = (
        "If you did not ask for this, ignore this mail: your password stays as it is. "
        "Setting a new password signs every session of the account out."
    )
    text = f"{greeting}\n\n{lead}\n\n{link}\n\n{footer}\n"
    html = _html(greeting, lead, link, "Choose a new password", footer)
    return Mail(to=to, subject="Reset your password", text=text, html=html)


def verify_email(to: str, name: str, link: str, ttl_hours: int) -> Mail:
    greeting = f"Hello {name},"
    lead = (
        "Please confirm that this is your email address. "
        f"The link below works once, for {ttl_hours} hours."
    )
    footer = "If you did not create an account, ignore this mail."
    text = f"{greeting}\n\n{lead}\n\n{link}\n\n{footer}\n"
    html = _html(greeting, lead, link, "Confirm my email address", footer)
    return Mail(to=to, subject="Confirm your email address", text=text, html=html)
