"""Fixtures for the console's browser tests (run by infra/console-test.sh).

One headless Chromium for the session; each test gets a fresh browser
context (its own sessionStorage) in the Asia/Taipei time zone, so that the
local times it types are 8 hours ahead of the UTC the API stores. The
writer is real; `api` talks to it directly with the admin token to set up
and check what the console did.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

URL = os.environ.get("ADCAST_CONSOLE_URL", "http://127.0.0.1:8081").rstrip("/")
ADMIN_TOKEN = os.environ.get("ADCAST_ADMIN_TOKEN", "")
READ_TOKEN = os.environ.get("ADCAST_READ_TOKEN", "")
INTERNAL_TOKEN = os.environ.get("ADCAST_INTERNAL_TOKEN", "")
ARTIFACTS = Path(os.environ.get("ADCAST_ARTIFACTS", "target/console-artifacts"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TIME_ZONE = "Asia/Taipei"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]

expect.set_options(timeout=10_000)


@dataclass
class Answer:
    status: int
    body: object
    headers: dict


class Api:
    """The Admin API, called directly (not through the browser)."""

    def __init__(self, token: str):
        self.token = token

    def call(self, method: str, path: str, body=None, query=None) -> Answer:
        url = f"{URL}/api/v1/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                status, headers = response.status, dict(response.headers)
        except urllib.error.HTTPError as error:
            raw, status, headers = error.read(), error.code, dict(error.headers)
        return Answer(status, json.loads(raw) if raw else None, headers)

    def create(self, title: str, start: str, end: str, conditions=None) -> dict:
        answer = self.call("POST", "ad", {"title": title, "startAt": start, "endAt": end, "conditions": conditions})
        assert answer.status == 201, answer
        return answer.body

    def get(self, ad_id: int) -> Answer:
        return self.call("GET", f"ad/{ad_id}")

    def titled(self, text: str) -> list[dict]:
        """Every live ad whose title contains `text` (the list's `q`)."""
        items, after = [], None
        while True:
            query = {"q": text, "limit": 100}
            if after:
                query["after"] = after
            page = self.call("GET", "admin/ad", query=query)
            assert page.status == 200, page
            items += page.body["items"]
            after = page.body["next"]
            if after is None:
                return items


@pytest.fixture(scope="session")
def api() -> Api:
    return Api(ADMIN_TOKEN)


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request) -> Page:
    context = browser.new_context(timezone_id=TIME_ZONE, locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    # Uncaught exceptions and CSP violations fail the test; the browser's
    # own "Failed to load resource" lines for deliberate 4xx/5xx do not.
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on(
        "console",
        lambda message: problems.append(f"console: {message.text}")
        if message.type == "error" and "Content Security Policy" in message.text
        else None,
    )
    yield page
    context.close()
    assert not problems, problems


@pytest.fixture
def marker() -> str:
    """A word no other test's ads contain, to find this test's ads by title."""
    return f"t{uuid.uuid4().hex[:10]}"


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, token: str = ADMIN_TOKEN) -> None:
    page.goto(f"{URL}/admin/")
    page.get_by_label("Token", exact=True).fill(token)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Ads")).to_be_visible()


def open_ad(page: Page, ad_id: int) -> None:
    page.goto(f"{URL}/admin/#/ad/{ad_id}")
    expect(page.get_by_role("heading", level=1, name=re.compile(rf"^(Edit ad|Ad) {ad_id}$"))).to_be_visible()


def group(page: Page, number: int):
    return page.get_by_role("group", name=f"Group {number}", exact=True)


def choose_country(scope, typed: str) -> None:
    box = scope.get_by_role("combobox", name="Country", exact=True)
    box.fill(typed)
    box.press("Enter")
    box.fill("")
    box.press("Escape")
