"""The web console in a real browser against a real writer.

Times typed into the console are Asia/Taipei (UTC+8, no daylight saving
time), so 09:00 local is 01:00Z in what the API stores.

The explain and preview tests need the writer's explain and preview routes
(GET /api/v1/admin/ad/{id}/explain, GET /api/v1/admin/preview); the
read-token tests need --read-token, GET /api/v1/admin/whoami and
GET /api/v1/admin/ad/{id}/history.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from conftest import (
    ADMIN_TOKEN,
    INTERNAL_TOKEN,
    READ_TOKEN,
    URL,
    choose_country,
    group,
    open_ad,
    screenshot,
    sign_in,
)
from playwright.sync_api import Page, expect

FUTURE_START = "2030-05-01T01:00:00.000Z"
FUTURE_END = "2030-06-01T10:30:00.000Z"


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_plus(**delta) -> str:
    return iso(datetime.now(timezone.utc) + timedelta(**delta))


def fill_new_ad(page: Page, title: str, start: str, end: str) -> None:
    page.get_by_role("button", name="New ad", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="New ad")).to_be_visible()
    page.get_by_label("Title", exact=True).fill(title)
    page.get_by_label("Start", exact=True).fill(start)
    page.get_by_label("End", exact=True).fill(end)


def search(page: Page, text: str) -> None:
    """Searches titles and waits until the filtered list is shown."""
    page.get_by_label("Search titles", exact=True).fill(text)
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#list-summary")).to_contain_text(re.compile("matching the filters|No ads match"))


def result_of(page: Page, selector: str):
    """The result region once it shows something (an answer or an error),
    so that a missing route fails at once instead of after a timeout."""
    result = page.locator(selector)
    expect(result).not_to_be_empty()
    return result


def save(page: Page) -> None:
    page.get_by_role("button", name="Save", exact=True).click()


# --- the assets ---------------------------------------------------------------


def test_admin_redirects_to_the_console_which_loads_without_errors(page: Page):
    page.goto(f"{URL}/admin")
    assert page.url == f"{URL}/admin/"
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()
    screenshot(page, "sign-in")


# --- signing in -----------------------------------------------------------------


def test_a_wrong_token_is_refused_with_a_visible_message(page: Page):
    page.goto(f"{URL}/admin/")
    page.get_by_label("Token", exact=True).fill("not-the-token")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="refused")).to_be_visible()
    expect(page.get_by_label("Token", exact=True)).to_have_attribute("aria-invalid", "true")
    assert page.evaluate("Object.keys(sessionStorage).length") == 0


def test_the_token_is_kept_in_session_storage_only(page: Page):
    sign_in(page)
    assert ADMIN_TOKEN not in page.url
    assert page.context.cookies() == []
    assert page.evaluate("Object.values(sessionStorage)").count(ADMIN_TOKEN) == 1
    assert page.evaluate("Object.values(localStorage)") == []


def test_a_401_after_sign_in_goes_back_to_sign_in(page: Page):
    sign_in(page)
    page.evaluate("sessionStorage.setItem('adcast.console.token', 'revoked')")
    page.get_by_role("link", name="Preview as a user").click()
    page.get_by_role("link", name="Ads", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="401")).to_be_visible()


# --- create, edit, delete -------------------------------------------------------


def test_creating_an_ad_with_two_groups_stores_them_with_utc_times(page: Page, api, marker):
    sign_in(page)
    fill_new_ad(page, f"Summer {marker}", "2030-05-01T09:00", "2030-06-01T18:30")
    # The UTC value shown beside each time is the one the API stores.
    expect(page.get_by_text(f"UTC: {FUTURE_START}")).to_be_visible()
    expect(page.get_by_text(f"UTC: {FUTURE_END}")).to_be_visible()
    page.get_by_role("button", name="Add group", exact=True).click()
    page.get_by_role("button", name="Add group", exact=True).click()
    first, second = group(page, 1), group(page, 2)
    first.get_by_label("Age from", exact=True).fill("20")
    first.get_by_label("Age to", exact=True).fill("30")
    first.get_by_label("Female (F)").check()
    choose_country(first, "taiw")
    choose_country(first, "japan")
    first.get_by_label("iOS").check()
    choose_country(second, "united states")
    second.get_by_label("Web").check()
    expect(first.get_by_role("button", name="Remove Taiwan (TW)")).to_be_visible()
    save(page)

    heading = page.get_by_role("heading", level=1, name=re.compile(r"^Edit ad \d+$"))
    expect(heading).to_be_visible()
    ad_id = int(heading.inner_text().split()[-1])
    expect(page.get_by_role("status")).to_have_text(f"Ad {ad_id} created.")
    stored = api.get(ad_id).body
    assert stored["startAt"] == FUTURE_START
    assert stored["endAt"] == FUTURE_END
    assert stored["conditions"] == [
        {"ageStart": 20, "ageEnd": 30, "gender": ["F"], "country": ["JP", "TW"], "platform": ["ios"]},
        {"country": ["US"], "platform": ["web"]},
    ]
    # The edit form shows the stored values back, local and UTC.
    expect(page.get_by_label("Start", exact=True)).to_have_value("2030-05-01T09:00")
    expect(page.get_by_text(f"UTC: {stored['endAt']}")).to_be_visible()
    screenshot(page, "edit")


def test_an_end_before_the_start_is_shown_next_to_end(page: Page, api, marker):
    sign_in(page)
    fill_new_ad(page, f"Backwards {marker}", "2030-05-01T09:00", "2030-04-01T09:00")
    save(page)
    end = page.get_by_label("End", exact=True)
    error = page.locator("#ad-end-error")
    expect(error).to_have_text(re.compile("endAt must be after startAt"))
    expect(error).to_have_attribute("role", "alert")
    expect(end).to_have_attribute("aria-invalid", "true")
    assert "ad-end-error" in end.get_attribute("aria-describedby").split()
    expect(end).to_be_focused()
    assert api.titled(marker) == []


def test_a_group_field_error_is_shown_in_that_group(page: Page, marker):
    sign_in(page)
    fill_new_ad(page, f"Ages {marker}", "2030-05-01T09:00", "2030-06-01T09:00")
    page.get_by_role("button", name="Add group", exact=True).click()
    page.get_by_role("button", name="Add group", exact=True).click()
    second = group(page, 2)
    second.get_by_label("Age from", exact=True).fill("40")
    second.get_by_label("Age to", exact=True).fill("30")
    save(page)
    age_to = second.get_by_label("Age to", exact=True)
    expect(age_to).to_have_attribute("aria-invalid", "true")
    expect(second.get_by_role("alert").filter(has_text="ageEnd")).to_be_visible()
    expect(group(page, 1).get_by_label("Age to", exact=True)).not_to_have_attribute("aria-invalid", "true")


def test_editing_an_ad_saves_the_changes(page: Page, api, marker):
    ad = api.create(f"Before {marker}", FUTURE_START, FUTURE_END, [{"country": ["TW"]}])
    sign_in(page)
    open_ad(page, ad["id"])
    page.get_by_label("Title", exact=True).fill(f"After {marker}")
    page.get_by_label("End", exact=True).fill("2030-07-01T12:00")
    group(page, 1).get_by_label("Android").check()
    save(page)
    expect(page.get_by_role("status")).to_have_text(f"Ad {ad['id']} saved.")
    stored = api.get(ad["id"]).body
    assert stored["title"] == f"After {marker}"
    assert stored["endAt"] == "2030-07-01T04:00:00.000Z"
    assert stored["conditions"] == [{"country": ["TW"], "platform": ["android"]}]


def test_removing_every_group_makes_the_ad_target_everyone(page: Page, api, marker):
    ad = api.create(f"Narrow {marker}", FUTURE_START, FUTURE_END, [{"gender": ["M"]}, {"platform": ["web"]}])
    sign_in(page)
    open_ad(page, ad["id"])
    page.get_by_role("button", name="Remove group 2").click()
    page.get_by_role("button", name="Remove group 1").click()
    expect(page.get_by_text("No groups: every user sees this ad.")).to_be_visible()
    save(page)
    expect(page.get_by_role("status")).to_have_text(f"Ad {ad['id']} saved.")
    assert api.get(ad["id"]).body["conditions"] == []


def test_delete_asks_for_confirmation_and_escape_cancels(page: Page, api, marker):
    ad = api.create(f"Keep {marker}", FUTURE_START, FUTURE_END)
    sign_in(page)
    open_ad(page, ad["id"])
    page.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Delete", exact=True)).to_be_focused()
    assert api.get(ad["id"]).status == 200


def test_delete_after_confirmation_removes_the_ad(page: Page, api, marker):
    ad = api.create(f"Gone {marker}", FUTURE_START, FUTURE_END)
    sign_in(page)
    open_ad(page, ad["id"])
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Yes, delete").click()
    expect(page.get_by_role("heading", level=1, name="Ads")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(f"Ad {ad['id']} deleted.")
    assert api.get(ad["id"]).status == 404


def test_a_double_click_on_save_creates_one_ad(page: Page, api, marker):
    posts = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" and r.url.endswith("/api/v1/ad") else None)
    sign_in(page)
    fill_new_ad(page, f"Once {marker}", "2030-05-01T09:00", "2030-06-01T09:00")
    page.get_by_role("button", name="Save", exact=True).dblclick()
    expect(page.get_by_role("heading", level=1, name=re.compile(r"^Edit ad \d+$"))).to_be_visible()
    assert len(api.titled(marker)) == 1
    keys = {request.headers.get("idempotency-key") for request in posts}
    assert None not in keys and len(keys) == 1, keys


def test_a_retried_create_reuses_its_idempotency_key(page: Page, api, marker):
    """The first POST is answered 503 before it reaches the writer; Retry
    sends the same body with the same key, and one ad exists."""
    keys = []

    def unavailable_once(route):
        keys.append(route.request.headers.get("idempotency-key"))
        if len(keys) == 1:
            route.fulfill(status=503, content_type="application/json", headers={"Retry-After": "1"},
                          body=json.dumps({"error": {"code": "unavailable", "message": "the database is unavailable; retry shortly"}}))
        else:
            route.continue_()

    sign_in(page)
    page.route(re.compile(r".*/api/v1/ad$"), unavailable_once)
    fill_new_ad(page, f"Retry {marker}", "2030-05-01T09:00", "2030-06-01T09:00")
    save(page)
    alert = page.locator("#alert")
    expect(alert).to_contain_text("unavailable (503)")
    alert.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("heading", level=1, name=re.compile(r"^Edit ad \d+$"))).to_be_visible()
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0]
    assert len(api.titled(marker)) == 1


def test_a_503_on_the_list_shows_a_retry_message(page: Page):
    calls = []

    def unavailable_once(route):
        calls.append(1)
        if len(calls) == 1:
            route.fulfill(status=503, content_type="application/json",
                          body=json.dumps({"error": {"code": "unavailable", "message": "the database is unavailable; retry shortly"}}))
        else:
            route.continue_()

    page.goto(f"{URL}/admin/")
    page.get_by_label("Token", exact=True).fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Ads")).to_be_visible()
    page.route(re.compile(r".*/api/v1/admin/ad\?.*"), unavailable_once)
    page.get_by_role("link", name="Preview as a user").click()
    page.get_by_role("link", name="Ads", exact=True).click()
    alert = page.locator("#alert")
    expect(alert).to_contain_text("unavailable (503)")
    alert.get_by_role("button", name="Retry").click()
    expect(alert).to_be_hidden()
    expect(page.locator("#list-summary")).not_to_have_text("The list could not be loaded.")


def test_a_409_on_create_is_shown(page: Page, marker):
    sign_in(page)
    page.route(re.compile(r".*/api/v1/ad$"), lambda route: route.fulfill(
        status=409, content_type="application/json",
        body=json.dumps({"error": {"code": "conflict", "message": "Idempotency-Key was already used with a different request body"}})))
    fill_new_ad(page, f"Conflict {marker}", "2030-05-01T09:00", "2030-06-01T09:00")
    save(page)
    expect(page.locator("#form-error")).to_contain_text("Conflict (409)")
    expect(page.get_by_role("button", name="Save", exact=True)).to_be_enabled()


def test_a_403_on_a_write_is_shown_and_hides_the_write_controls(page: Page, api, marker):
    ad = api.create(f"Forbidden {marker}", FUTURE_START, FUTURE_END)
    sign_in(page)
    page.route(re.compile(rf".*/api/v1/ad/{ad['id']}$"), lambda route: route.fulfill(
        status=403, content_type="application/json",
        body=json.dumps({"error": {"code": "forbidden", "message": "this token may only read"}}))
        if route.request.method == "PUT" else route.continue_())
    open_ad(page, ad["id"])
    save(page)
    expect(page.locator("#form-error")).to_contain_text("may only read")
    expect(page.locator("#who")).to_contain_text("read only")
    page.get_by_role("link", name="Ads", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Ads")).to_be_visible()
    expect(page.get_by_role("button", name="New ad")).to_have_count(0)


# --- the list ------------------------------------------------------------------


def test_the_list_shows_states_and_filters_by_state_and_title(page: Page, api, marker):
    ending = api.create(f"Flash sale {marker}", now_plus(days=-1), now_plus(seconds=2), [{"platform": ["web"]}])
    api.create(f"Spring launch {marker}", now_plus(days=-1), now_plus(days=30),
               [{"ageStart": 18, "ageEnd": 34, "country": ["TW", "JP"]}, {"gender": ["F"], "platform": ["ios"]}])
    api.create(f"Holiday promo {marker}", now_plus(days=10), now_plus(days=30), [{"country": ["US", "CA", "GB", "DE"]}])
    api.create("Unrelated title", now_plus(days=-1), now_plus(days=30))
    # Let the first one end.
    time.sleep(max(0.0, (datetime.fromisoformat(ending["endAt"].replace("Z", "+00:00"))
                         - datetime.now(timezone.utc)).total_seconds()) + 0.5)
    sign_in(page)
    search(page, marker.upper())
    rows = page.locator("table.ads tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text=f"Flash sale {marker}")).to_contain_text("ended")
    expect(rows.filter(has_text=f"Spring launch {marker}")).to_contain_text("active")
    expect(rows.filter(has_text=f"Holiday promo {marker}")).to_contain_text("scheduled")
    screenshot(page, "list")
    page.get_by_label("State", exact=True).select_option("active")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"Spring launch {marker}")
    assert "state=active" in page.url and ADMIN_TOKEN not in page.url


def test_the_list_pages_with_the_next_cursor(page: Page, api, marker):
    for i in range(23):
        api.create(f"Page {marker} {i:02}", FUTURE_START, FUTURE_END)
    sign_in(page)
    search(page, marker)
    rows = page.locator("table.ads tbody tr")
    expect(rows).to_have_count(20)
    page.get_by_role("button", name="Next page").click()
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text(f"Page {marker} 20")
    expect(page.get_by_role("button", name="Next page")).to_have_count(0)
    page.get_by_role("button", name="Previous page").click()
    expect(rows).to_have_count(20)
    expect(rows.first).to_contain_text(f"Page {marker} 00")


def test_a_title_search_that_is_too_long_is_shown_next_to_the_search(page: Page):
    sign_in(page)
    page.get_by_label("Search titles", exact=True).fill("x" * 257)
    page.get_by_role("button", name="Search", exact=True).click()
    box = page.get_by_label("Search titles", exact=True)
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#filter-q-error")).to_contain_text("q must be")


# --- small screens and the keyboard --------------------------------------------


def test_at_375_px_the_list_and_the_form_are_usable(page: Page, api, marker):
    api.create(f"Phone {marker} with a rather long title that has to wrap on a small screen", FUTURE_START, FUTURE_END,
               [{"ageStart": 18, "ageEnd": 24, "country": ["TW", "JP", "KR", "US"]}])
    page.set_viewport_size({"width": 375, "height": 740})
    sign_in(page)
    search(page, marker)
    expect(page.locator("table.ads tbody tr")).to_have_count(1)
    width = "document.documentElement.scrollWidth"
    assert page.evaluate(width) <= 375
    screenshot(page, "list-375")
    fill_new_ad(page, f"Small {marker}", "2030-05-01T09:00", "2030-06-01T09:00")
    page.get_by_role("button", name="Add group", exact=True).click()
    choose_country(group(page, 1), "taiwan")
    assert page.evaluate(width) <= 375
    screenshot(page, "form-375")
    save(page)
    expect(page.get_by_role("heading", level=1, name=re.compile(r"^Edit ad \d+$"))).to_be_visible()
    assert api.titled(f"Small {marker}")[0]["conditions"] == [{"country": ["TW"]}]


def test_a_control_focused_while_the_list_loads_keeps_the_focus(page: Page, api, marker):
    sign_in(page)
    held = []
    # The list's request is held until the user has moved focus into the
    # screen: the heading must not take it back when the rows arrive.
    page.route(re.compile(r".*/api/v1/admin/ad\?.*"),
               lambda route: route.continue_() if held else held.append(route))
    page.goto(f"{URL}/admin/#/ads?q={marker}")
    expect(page.locator("#list-summary")).to_have_text("Loading…")
    button = page.get_by_role("button", name="New ad", exact=True)
    button.focus()
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(20)
    assert held, "the list asked for its rows"
    held[0].continue_()
    expect(page.locator("#list-summary")).not_to_have_text("Loading…")
    expect(button).to_be_focused()


def test_the_form_can_be_filled_and_saved_with_the_keyboard_alone(page: Page, api, marker):
    sign_in(page)
    page.get_by_role("button", name="New ad", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="New ad")).to_be_focused()

    def focused() -> str:
        return page.evaluate("""() => {
            const e = document.activeElement;
            if (e.labels && e.labels.length) return e.labels[0].textContent.trim();
            return e.getAttribute('aria-label') || e.textContent.trim();
        }""")

    def tab() -> str:
        """Tab to the next control (Chromium tabs through a date's parts first)."""
        before = page.evaluate_handle("document.activeElement")
        for _ in range(8):
            page.keyboard.press("Tab")
            if not page.evaluate("b => document.activeElement === b", before):
                break
        return focused()

    def type_time(month_day_year: list[str], time_of_day: str) -> None:
        for part in month_day_year:
            page.keyboard.type(part)
        page.keyboard.press("Tab")
        page.keyboard.type(time_of_day)

    assert tab() == "Title"
    page.keyboard.type(f"Keys {marker}")
    assert tab() == "Start"
    type_time(["05", "01", "2030"], "090000A")
    assert tab() == "End"
    type_time(["06", "01", "2030"], "090000A")
    assert tab() == "Add group"
    page.keyboard.press("Enter")  # adds a group and moves into it
    assert focused() == "Age from"
    page.keyboard.type("25")
    assert tab() == "Age to"
    assert tab() == "Male (M)"
    page.keyboard.press("Space")
    assert tab() == "Female (F)"
    assert tab() == "Country"
    page.keyboard.type("japa")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Remove Japan (JP)")).to_be_visible()
    assert tab() == "Remove Japan (JP)"
    assert tab() == "Android"
    assert tab() == "iOS"
    assert tab() == "Web"
    page.keyboard.press("Space")
    assert tab() == "Remove group 1"
    assert tab() == "Add group"
    assert tab() == "Save"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name=re.compile(r"^Edit ad \d+$"))).to_be_visible()
    [stored] = api.titled(f"Keys {marker}")
    assert stored["startAt"] == FUTURE_START
    assert stored["endAt"] == "2030-06-01T01:00:00.000Z"
    assert stored["conditions"] == [{"ageStart": 25, "ageEnd": 100, "gender": ["M"], "country": ["JP"], "platform": ["web"]}]


# --- read tokens (needs --read-token and GET /api/v1/admin/whoami) ---------------


@pytest.mark.skipif(not READ_TOKEN, reason="this writer has no --read-token")
def test_a_read_token_sees_ads_without_write_controls(page: Page, api, marker):
    ad = api.create(f"Look {marker}", FUTURE_START, FUTURE_END)
    sign_in(page, READ_TOKEN)
    expect(page.locator("#who")).to_contain_text("read only")
    expect(page.get_by_role("button", name="New ad")).to_have_count(0)
    open_ad(page, ad["id"])
    expect(page.get_by_role("heading", level=1, name=f"Ad {ad['id']}")).to_be_visible()
    expect(page.get_by_role("button", name="Save", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Delete", exact=True)).to_have_count(0)
    expect(page.get_by_label("Title", exact=True)).to_be_disabled()


@pytest.mark.skipif(not READ_TOKEN, reason="this writer has no --read-token")
def test_a_read_token_sees_who_changed_an_ad(page: Page, api, marker):
    ad = api.create(f"Audited {marker}", FUTURE_START, FUTURE_END)
    replaced = api.call("PUT", f"ad/{ad['id']}", {"title": f"Audited v2 {marker}", "startAt": FUTURE_START, "endAt": FUTURE_END})
    assert replaced.status == 200, replaced
    sign_in(page, READ_TOKEN)
    expect(page.locator("#who")).to_contain_text("viewer")
    open_ad(page, ad["id"])
    page.get_by_role("button", name="Show history", exact=True).click()
    rows = page.locator("#history-result tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Created")
    expect(rows.nth(0)).to_contain_text("console-admin")
    expect(rows.nth(1)).to_contain_text("Replaced")
    screenshot(page, "history")


@pytest.mark.skipif(not INTERNAL_TOKEN, reason="this writer has no --internal-token")
def test_an_internal_token_is_refused_at_sign_in(page: Page):
    page.goto(f"{URL}/admin/")
    page.get_by_label("Token", exact=True).fill(INTERNAL_TOKEN)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="403")).to_be_visible()
    assert page.evaluate("Object.keys(sessionStorage).length") == 0


# --- explain and preview (need the writer's explain and preview routes) ---------


def test_explain_tells_why_an_ad_is_or_is_not_served(page: Page, api, marker):
    ad = api.create(f"Explained {marker}", now_plus(days=-1), now_plus(days=30),
                    [{"ageStart": 20, "ageEnd": 30, "country": ["TW"]}, {"platform": ["web"]}])
    sign_in(page)
    open_ad(page, ad["id"])
    tool = page.get_by_role("region", name="Explain this ad for a user")
    tool.get_by_label("Age", exact=True).fill("40")
    tool.get_by_label("Country", exact=True).select_option("TW")
    tool.get_by_label("Platform", exact=True).select_option("ios")
    tool.get_by_role("button", name="Explain", exact=True).click()
    result = result_of(page, "#explain-result")
    expect(result).to_contain_text("Served: no.", timeout=1_000)
    expect(result).to_contain_text("Group 1: does not match (age)")
    expect(result).to_contain_text("Group 2: does not match (platform)")
    tool.get_by_label("Age", exact=True).fill("25")
    tool.get_by_role("button", name="Explain", exact=True).click()
    expect(result).to_contain_text("Served: yes, at position")
    expect(result).to_contain_text("Group 1: matches.")
    screenshot(page, "explain")


def test_explain_at_a_time_before_the_start_says_scheduled(page: Page, api, marker):
    ad = api.create(f"Launch {marker}", FUTURE_START, FUTURE_END)
    sign_in(page)
    open_ad(page, ad["id"])
    tool = page.get_by_role("region", name="Explain this ad for a user")
    tool.get_by_label("Time", exact=True).fill("2030-05-01T08:59")
    expect(tool.get_by_text("UTC: 2030-05-01T00:59:00.000Z")).to_be_visible()
    tool.get_by_role("button", name="Explain", exact=True).click()
    expect(result_of(page, "#explain-result")).to_contain_text("scheduled", timeout=1_000)


def test_preview_as_a_user_at_a_time_lists_what_the_public_api_would(page: Page, api, marker):
    api.create(f"Preview {marker}", FUTURE_START, FUTURE_END, [{"country": ["TW"], "platform": ["ios"]}])
    sign_in(page)
    page.get_by_role("link", name="Preview as a user").click()
    expect(page.get_by_role("heading", level=1, name="Preview as a user")).to_be_visible()
    page.get_by_label("Country", exact=True).select_option("TW")
    page.get_by_label("Platform", exact=True).select_option("ios")
    page.get_by_label("Time", exact=True).fill("2030-05-15T12:00")
    page.get_by_label("Limit", exact=True).fill("100")
    page.get_by_role("button", name="Preview", exact=True).click()
    result = result_of(page, "#preview-result")
    expect(result).to_contain_text(f"Preview {marker}", timeout=1_000)
    expect(result).to_contain_text(FUTURE_END)
    screenshot(page, "preview")
