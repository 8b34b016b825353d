// "Preview as a user at a time" and "explain this ad for a user": the
// writer's own answers (GET /api/v1/admin/preview and
// /api/v1/admin/ad/{id}/explain) for a user described by age, gender,
// country and platform, at a chosen time (empty: now).

import { api, ApiError } from "./api.js";
import { COUNTRIES } from "./countries.js";
import { field, h, replace, setError, timeField } from "./dom.js";
import { formatLocal, localInputToUtc, timeZone } from "./time.js";

const DIMENSIONS = { age: "age", gender: "gender", country: "country", platform: "platform" };

/** The controls describing a user and a moment. */
function userFields(prefix) {
  const age = field("Age", h("input", { id: `${prefix}-age`, type: "number", min: "1", max: "100", step: "1", inputmode: "numeric" }),
    { hint: "Empty: any age." });
  const gender = field("Gender", h("select", { id: `${prefix}-gender` },
    h("option", { value: "" }, "Any"), h("option", { value: "M" }, "Male (M)"), h("option", { value: "F" }, "Female (F)")));
  const countries = [...COUNTRIES].sort((a, b) => a[1].localeCompare(b[1], "en"));
  const country = field("Country", h("select", { id: `${prefix}-country` },
    h("option", { value: "" }, "Any"), countries.map(([code, name]) => h("option", { value: code }, `${name} (${code})`))));
  const platform = field("Platform", h("select", { id: `${prefix}-platform` },
    h("option", { value: "" }, "Any"), h("option", { value: "android" }, "Android"),
    h("option", { value: "ios" }, "iOS"), h("option", { value: "web" }, "Web")));
  const time = timeField("Time", `${prefix}-time`, null, "now");
  const slots = { age, gender, country, platform, at: time };
  const element = h("div", { class: "user-fields" },
    h("div", { class: "row" }, age.element, gender.element),
    h("div", { class: "row" }, country.element, platform.element),
    time.element,
    h("p", { class: "hint" }, `Time is in ${timeZone()}; leave it empty for now.`));
  return {
    element,
    slots,
    /** The query, or `[field, message]` for input the browser already rejects. */
    read() {
      if (age.control.validity.badInput) return { error: ["age", "Age must be a whole number from 1 to 100"] };
      if (time.control.value && localInputToUtc(time.control.value) === null) {
        return { error: ["at", "Time must be a complete date and time"] };
      }
      return {
        query: {
          age: age.control.value,
          gender: gender.control.value,
          country: country.control.value,
          platform: platform.control.value,
          at: time.control.value ? localInputToUtc(time.control.value) : "",
        },
      };
    },
    clearErrors() {
      for (const slot of Object.values(slots)) setError(slot, "");
    },
    /** Shows an error next to the control `fieldName` names; false if none does. */
    showError(fieldName, message) {
      const slot = slots[fieldName];
      if (!slot) return false;
      setError(slot, message);
      slot.control.focus();
      return true;
    },
  };
}

/** The "Explain this ad for a user" section of an ad's screen. */
export function explainSection(ctx, id) {
  const user = userFields("explain");
  const button = h("button", { type: "submit" }, "Explain");
  const result = h("div", { class: "result", id: "explain-result", "aria-live": "polite" });
  const form = h("form", { novalidate: true, onsubmit: run }, user.element, h("div", { class: "actions" }, button));
  const section = h("section", { class: "tool card", "aria-labelledby": "explain-heading" },
    h("h2", { id: "explain-heading" }, "Explain this ad for a user"),
    h("p", { class: "hint" }, "Why this ad is or is not shown to such a user at that time."),
    form, result);

  async function run(event) {
    if (event) event.preventDefault();
    user.clearErrors();
    const read = user.read();
    if (read.error) {
      user.showError(...read.error);
      return;
    }
    button.disabled = true;
    try {
      const answer = (await api("GET", `admin/ad/${id}/explain`, { query: read.query })).body;
      replace(result, explanation(answer));
      result.scrollIntoView({ block: "nearest" });
    } catch (error) {
      failed(ctx, user, result, error, run, "explain");
    } finally {
      button.disabled = false;
    }
  }
  return section;
}

/**
 * The "History" section of an ad's screen: who changed it, oldest first
 * (GET /api/v1/admin/ad/{id}/history). Loaded on demand; a writer without
 * the route (404 "no route") says so instead.
 */
export function historySection(ctx, id) {
  const button = h("button", { type: "button", onclick: load }, "Show history");
  const result = h("div", { class: "result", id: "history-result", "aria-live": "polite" });
  const section = h("section", { class: "tool card", "aria-labelledby": "history-heading" },
    h("h2", { id: "history-heading" }, "History"),
    h("p", { class: "hint" }, "Every change to this ad, oldest first, with the label of the token that made it."),
    h("div", { class: "actions" }, button), result);

  async function load() {
    button.disabled = true;
    try {
      const answer = (await api("GET", `admin/ad/${id}/history`)).body;
      replace(result, changes(answer.items));
    } catch (error) {
      if (error instanceof ApiError && error.noRoute) {
        replace(result, h("p", {}, "This writer keeps no history."));
      } else if (!(error instanceof ApiError && error.status === 401)) {
        result.replaceChildren();
        ctx.showError(error, load);
      }
    } finally {
      button.disabled = false;
    }
  }
  return section;
}

const ACTIONS = { create: "Created", replace: "Replaced", delete: "Deleted" };

function changes(items) {
  if (items.length === 0) return h("p", {}, "No changes recorded (the ad is older than the history).");
  return h("table", { class: "history" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Change"), h("th", { scope: "col" }, "When"),
      h("th", { scope: "col" }, "What"), h("th", { scope: "col" }, "By"))),
    h("tbody", {}, ...items.map((item) => h("tr", {},
      h("td", {}, String(item.seq)),
      h("td", {}, `${formatLocal(item.at)} (UTC ${item.at})`),
      h("td", {}, ACTIONS[item.action] ?? item.action),
      h("td", {}, item.by ?? "(no label)")))));
}

function explanation(answer) {
  const at = `${formatLocal(answer.at)} (UTC ${answer.at})`;
  const served = answer.served
    ? `Served: yes, at position ${answer.position} of the answer (offset=${answer.position}&limit=1 returns it).`
    : "Served: no.";
  const state = {
    scheduled: "scheduled: it has not started yet",
    active: "active",
    ended: "ended",
  }[answer.state] ?? answer.state;
  const groups = answer.groups.length === 0
    ? [h("li", {}, "No groups: the ad targets everyone.")]
    : answer.groups.map((group, i) => h("li", { class: group.matches ? "match" : "miss" },
      group.matches
        ? `Group ${i + 1}: matches.`
        : `Group ${i + 1}: does not match (${group.failed.map((name) => DIMENSIONS[name] ?? name).join(", ")}).`));
  return h("div", { class: `verdict ${answer.served ? "served" : "not-served"}` },
    h("p", { class: "headline" }, served),
    h("p", {}, `At ${at} the ad is ${state}.`),
    h("p", {}, answer.audience ? "The user is in its audience." : "The user is not in its audience."),
    h("ul", { class: "group-results" }, groups));
}

/** The "Preview as a user" screen. */
export function renderPreview(ctx) {
  const user = userFields("preview");
  const offset = field("Offset", h("input", { id: "preview-offset", type: "number", min: "0", step: "1", value: "0", inputmode: "numeric" }));
  const limit = field("Limit", h("input", { id: "preview-limit", type: "number", min: "1", max: "100", step: "1", value: "10", inputmode: "numeric" }));
  const button = h("button", { type: "submit", class: "primary" }, "Preview");
  const result = h("div", { class: "result", id: "preview-result", "aria-live": "polite" });
  const slots = { ...user.slots, offset, limit };
  const form = h("form", { class: "card", novalidate: true, onsubmit: run },
    user.element, h("div", { class: "row" }, offset.element, limit.element), h("div", { class: "actions" }, button));
  replace(ctx.main, h("h1", {}, "Preview as a user"),
    h("p", { class: "hint" }, "Exactly what the Public API answers such a user at that time, computed by the writer " +
      "with every change applied: what users will see at a campaign's launch."),
    form, result);

  async function run(event) {
    if (event) event.preventDefault();
    user.clearErrors();
    setError(offset, "");
    setError(limit, "");
    const read = user.read();
    if (read.error) {
      user.showError(...read.error);
      return;
    }
    const query = { ...read.query, offset: offset.control.value, limit: limit.control.value };
    button.disabled = true;
    try {
      const answer = await api("GET", "admin/preview", { query });
      showItems(answer, Number(query.offset || 0), Number(query.limit || 5));
      result.scrollIntoView({ block: "nearest" });
    } catch (error) {
      const known = { showError: (name, message) => {
        const slot = slots[name];
        if (!slot) return false;
        setError(slot, message);
        slot.control.focus();
        return true;
      }, clearErrors: () => {} };
      failed(ctx, known, result, error, run, "preview");
    } finally {
      button.disabled = false;
    }
  }

  function showItems(answer, from, size) {
    const items = answer.body.items;
    const seq = answer.headers.get("Adcast-Seq");
    const summary = items.length === 0
      ? "No ad would be shown to this user."
      : `${items.length} ad${items.length === 1 ? "" : "s"} from position ${from}` +
        `${seq ? `, as of change ${seq}` : ""}:`;
    const rows = items.map((item, i) => h("tr", {},
      h("td", { "data-label": "Position" }, String(from + i)),
      h("td", { "data-label": "Title", class: "title" }, item.title),
      h("td", { "data-label": "End" }, h("time", { datetime: item.endAt }, formatLocal(item.endAt)),
        h("span", { class: "utc" }, ` UTC ${item.endAt}`))));
    const more = items.length === size
      ? h("button", {
        type: "button",
        onclick: () => {
          offset.control.value = String(from + size);
          form.requestSubmit();
        },
      }, "Next results")
      : null;
    replace(result, h("p", { class: "summary" }, summary),
      items.length ? h("table", { class: "ads" }, h("caption", { class: "visually-hidden" }, "Preview"),
        h("thead", {}, h("tr", {}, ["Position", "Title", "End"].map((name) => h("th", { scope: "col" }, name)))),
        h("tbody", {}, rows)) : null,
      more);
  }
}

function failed(ctx, user, result, error, retry, what) {
  if (!(error instanceof ApiError)) {
    ctx.showError(error, retry);
    return;
  }
  if (error.status === 401) return;
  if (error.status === 400 && user.showError(error.field, error.message)) return;
  if (error.noRoute) {
    replace(result, h("p", { class: "form-error", role: "alert" }, `This writer does not offer ${what} yet (404).`));
  } else if (error.status === 404) {
    replace(result, h("p", { class: "form-error", role: "alert" }, `There is no such ad any more: ${error.message}`));
  } else if (error.retryable) {
    ctx.showError(error, retry);
  } else {
    replace(result, h("p", { class: "form-error", role: "alert" },
      `The writer refused this (${error.status} ${error.code}): ${error.message}`));
  }
}
