"""A person at a browser, headless: signs in and consents through Gatehouse's real HTML pages.

Real MCP hosts send the person to an authorization URL and wait for the redirect back to their
own callback. `approve` plays that person: it follows Gatehouse's redirects with a cookie jar,
fills in the sign-in form (fields `email` and `password`, with the page's CSRF token), presses
Allow (or Deny) on the consent page, and returns the URL Gatehouse finally redirects to, which
is the client's callback with `code`, `state` and `iss`. It never guesses a form: it reads the
one on the page, so a change to the pages that a browser would notice breaks it too.
"""

from __future__ import annotations

import re

from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx2

EMAIL = "ada@example.com"
# Redirects and forms followed before giving up (a connection adds a few).
STEPS = 16
PASSWORD = "correct horse battery staple"


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class FormParser(HTMLParser):
    """Collects every form with its hidden values, input names and named submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "title":
            self._in_title = True
        elif tag == "form":
            self.forms.append(Form(action=a.get("action", ""), method=a.get("method", "get").lower()))
        elif tag == "input" and self.forms and "name" in a:
            form = self.forms[-1]
            form.inputs.append(a["name"])
            if a.get("type") == "hidden":
                form.fields[a["name"]] = a.get("value", "")
        elif tag == "button" and self.forms and "name" in a:
            self.forms[-1].buttons.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def parse(html: str) -> FormParser:
    p = FormParser()
    p.feed(html)
    return p


class PageError(AssertionError):
    """Gatehouse showed a page the person could not get past (an error page, say)."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def approve(
    authorize_url: str,
    email: str = EMAIL,
    password: str = PASSWORD,
    decision: str = "allow",
    http: httpx2.Client | None = None,
    via: str | None = None,
    owner_account: tuple[str, str] | None = None,
    mailbox: Callable[[str], str] | None = None,
    upstream_login: str | None = None,
    consent_pages: list[str] | None = None,
) -> str:
    """Walks from `authorize_url` through sign-in and consent; returns the client's redirect URL.

    Pass `http` (a client with cookies) to keep the session between calls, as a browser would.
    `via` is another origin the walk goes through (the owner's login page of a bring-your-own-
    auth connection), where `owner_account` (user name, passcode) fills in its login form.
    With `mailbox` (address -> the sign-in code last mailed to it), the person asks for a code
    by email and types it instead of a password. With `upstream_login`, the person signs in as
    that account on an upstream OpenID Connect provider's development pages, or on the GitHub
    stand-in's "Authorize" page (at `via`), and consents there. Every consent page shown is
    appended to `consent_pages` when given (see `consent_scopes`).
    """
    own = http is None
    http = http or httpx2.Client(follow_redirects=False, timeout=10.0)
    origin = _origin(authorize_url)
    try:
        url, method, data = authorize_url, "GET", None
        for _ in range(STEPS):
            resp = http.request(method, url, data=data)
            if resp.status_code in (302, 303):
                location = urljoin(url, resp.headers["location"])
                if _origin(location) not in (origin, via):
                    return location
                url, method, data = location, "GET", None
                continue
            if resp.status_code != 200:
                raise PageError(
                    f"{method} {url} answered {resp.status_code}: {resp.text[:300]}", resp.status_code, resp.text
                )
            page = parse(resp.text)
            if consent_pages is not None and any(("decision", decision) in f.buttons for f in page.forms):
                consent_pages.append(resp.text)
            form, data = _next_step(
                page, email, password, decision, resp.text, owner_account, mailbox, upstream_login
            )
            url, method = urljoin(url, form.action), form.method.upper()
        raise PageError(f"no redirect back to the client after {STEPS} steps (last: {url})")
    finally:
        if own:
            http.close()


def _next_step(
    page: FormParser,
    email: str,
    password: str,
    decision: str,
    html: str,
    owner: tuple[str, str] | None = None,
    mailbox: Callable[[str], str] | None = None,
    upstream_login: str | None = None,
) -> tuple[Form, dict]:
    for form in page.forms:
        at_idp = upstream_login and "/interaction/" in form.action
        if at_idp and form.fields.get("prompt") == "login" and "login" in form.inputs:
            return form, {**form.fields, "login": upstream_login, "password": "any"}
        if at_idp and form.fields.get("prompt") == "consent":
            return form, dict(form.fields)
        if upstream_login and form.action == "/login/oauth/authorize" and "login" in form.inputs:
            # The GitHub stand-in's "Authorize" page (github_standin.py).
            return form, {**form.fields, "login": upstream_login, "authorize": "1"}
        if mailbox and form.action == "/login/email" and "email" in form.inputs:
            return form, {**form.fields, "email": email}
        if mailbox and "code" in form.inputs:
            return form, {**form.fields, "code": mailbox(email)}
        if owner and "username" in form.inputs and "passcode" in form.inputs:
            return form, {**form.fields, "username": owner[0], "passcode": owner[1]}
        if "password" in form.inputs and "email" in form.inputs:
            return form, {**form.fields, "email": email, "password": password}
        if ("decision", decision) in form.buttons:
            return form, {**form.fields, "decision": decision}
    raise PageError(f"page {page.title.strip()!r} has neither a sign-in nor a consent form: {html[:500]}")


def _origin(url: str) -> str:
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc}"


def consent_scopes(html: str) -> tuple[list[str], list[str]]:
    """The scopes a consent page asks for, and those it lists as already allowed."""
    lists = re.findall(r'<ul class="scopes( allowed)?">(.*?)</ul>', html, re.S)
    asked = [s for allowed, body in lists if not allowed for s in re.findall(r"<code>(.*?)</code>", body)]
    already = [s for allowed, body in lists if allowed for s in re.findall(r"<code>(.*?)</code>", body)]
    return asked, already
