// The list of ads: keyset pages of the admin list, filtered by state and
// title on the server (`state`, `q`), each ad's state judged by this
// browser's clock.

import { api, ApiError } from "./api.js";
import { countryName } from "./countries.js";
import { field, h, replace, setError } from "./dom.js";
import { formatLocal, stateAt, timeZone } from "./time.js";

const PAGE_SIZE = 20;
const STATES = [["", "All states"], ["scheduled", "Scheduled"], ["active", "Active"], ["ended", "Ended"]];

/**
 * The cursors of the pages before the current one, for "Previous page";
 * kept while the filters stay the same.
 */
let pages = { filters: "", cursors: [] };

export async function renderList(ctx, params) {
  const filters = { state: params.get("state") || "", q: params.get("q") || "" };
  const after = params.get("after") || "";
  const filterKey = JSON.stringify(filters);
  if (pages.filters !== filterKey || !after) pages = { filters: filterKey, cursors: [] };

  const stateSelect = field("State", h("select", { id: "filter-state", value: filters.state },
    STATES.map(([value, text]) => h("option", { value }, text))));
  const search = field("Search titles", h("input", { id: "filter-q", type: "search", value: filters.q }));
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter ads", novalidate: true, onsubmit: apply },
    stateSelect.element, search.element, h("div", { class: "actions" }, h("button", { type: "submit" }, "Search")));
  stateSelect.control.addEventListener("change", () => form.requestSubmit());

  const summary = h("p", { class: "summary", id: "list-summary" }, "Loading…");
  const results = h("div", { class: "results", "aria-busy": "true" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  const toolbar = h("div", { class: "toolbar" },
    ctx.canWrite() ? h("button", { type: "button", class: "primary", onclick: () => ctx.navigate("#/new") }, "New ad") : null);
  replace(ctx.main, h("div", { class: "heading-row" }, h("h1", {}, "Ads"), toolbar), form, summary, results, pager);

  function apply(event) {
    event.preventDefault();
    const next = new URLSearchParams();
    if (stateSelect.control.value) next.set("state", stateSelect.control.value);
    if (search.control.value.trim()) next.set("q", search.control.value.trim());
    const text = next.toString();
    ctx.navigate(`#/ads${text ? `?${text}` : ""}`);
  }

  async function load() {
    let page;
    try {
      page = (await api("GET", "admin/ad", { query: { ...filters, after, limit: PAGE_SIZE } })).body;
    } catch (error) {
      if (!ctx.stillCurrent()) return;
      results.setAttribute("aria-busy", "false");
      summary.textContent = "The list could not be loaded.";
      if (error instanceof ApiError && error.status === 400 && (error.field === "q" || error.field === "state")) {
        setError(error.field === "q" ? search : stateSelect, error.message);
      } else if (!(error instanceof ApiError && error.status === 401)) {
        ctx.showError(error, load);
      }
      return;
    }
    if (!ctx.stillCurrent()) return;
    ctx.clearAlert();
    results.setAttribute("aria-busy", "false");
    showPage(page);
  }

  function showPage(page) {
    const filtered = filters.state || filters.q;
    const first = pages.cursors.length * PAGE_SIZE + 1;
    if (page.items.length === 0) {
      summary.textContent = after ? "No more ads." : filtered ? "No ads match these filters." : "No ads yet.";
      results.replaceChildren();
    } else {
      const last = first + page.items.length - 1;
      const range = last === first ? `Ad ${first}` : `Ads ${first}–${last}`;
      summary.textContent = `${range}${filtered ? " matching the filters" : ""}. ` +
        `Times are in ${timeZone()}; states are as of now on this computer's clock.`;
      replace(results, table(page.items));
    }
    const buttons = [];
    if (after && pages.cursors.length !== 1) {
      buttons.push(h("button", {
        type: "button",
        onclick: () => {
          pages.cursors = [];
          ctx.navigate(listHash(filters, ""));
        },
      }, "First page"));
    }
    if (after && pages.cursors.length > 0) {
      buttons.push(h("button", {
        type: "button",
        onclick: () => ctx.navigate(listHash(filters, pages.cursors.pop())),
      }, "Previous page"));
    }
    if (page.next !== null && page.next !== undefined) {
      buttons.push(h("button", {
        type: "button",
        onclick: () => {
          pages.cursors.push(after);
          ctx.navigate(listHash(filters, String(page.next)));
        },
      }, "Next page"));
    }
    replace(pager, ...buttons);
  }

  await load();
}

function listHash(filters, after) {
  const params = new URLSearchParams();
  if (filters.state) params.set("state", filters.state);
  if (filters.q) params.set("q", filters.q);
  if (after) params.set("after", after);
  const text = params.toString();
  return `#/ads${text ? `?${text}` : ""}`;
}

function table(ads) {
  const now = Date.now();
  const header = h("thead", {}, h("tr", {},
    ["ID", "Title", "State", "Start", "End", "Audience"].map((name) => h("th", { scope: "col" }, name))));
  const rows = ads.map((ad) => {
    const state = stateAt(ad, now);
    return h("tr", {},
      h("td", { "data-label": "ID" }, String(ad.id)),
      h("td", { "data-label": "Title", class: "title" }, h("a", { href: `#/ad/${ad.id}` }, ad.title)),
      h("td", { "data-label": "State" }, h("span", { class: `state state-${state}` }, state)),
      h("td", { "data-label": "Start" }, h("time", { datetime: ad.startAt }, formatLocal(ad.startAt))),
      h("td", { "data-label": "End" }, h("time", { datetime: ad.endAt }, formatLocal(ad.endAt))),
      h("td", { "data-label": "Audience" }, audience(ad.conditions)));
  });
  return h("table", { class: "ads" }, h("caption", { class: "visually-hidden" }, "Ads"), header, h("tbody", {}, rows));
}

/** `Age 20–30, TW, JP, ios or F`: the groups in a few words. */
export function audience(conditions) {
  if (!Array.isArray(conditions) || conditions.length === 0) return "Everyone";
  return conditions.map((group) => {
    const parts = [];
    if (group.ageStart !== undefined) parts.push(`age ${group.ageStart}–${group.ageEnd}`);
    if (group.gender) parts.push(group.gender.join("/"));
    if (group.country) {
      const shown = group.country.slice(0, 3).map((code) => code).join(", ");
      const more = group.country.length > 3 ? ` +${group.country.length - 3}` : "";
      parts.push(h("abbr", { title: group.country.map(countryName).join(", ") }, `${shown}${more}`));
    }
    if (group.platform) parts.push(group.platform.join("/"));
    return parts;
  }).map((parts) => h("span", { class: "group-summary" }, joinNodes(parts, ", ")));
}

function joinNodes(parts, separator) {
  return parts.flatMap((part, i) => (i === 0 ? [part] : [separator, part]));
}
