// Creating and editing an ad: title, start and end in the browser's time
// zone (with the UTC value shown), any number of condition groups. The API
// validates; its `field` errors are shown next to the control they name.

import { api, ApiError, newIdempotencyKey } from "./api.js";
import { field, h, replace, setError, timeField, uid } from "./dom.js";
import { countryPicker } from "./picker.js";
import { explainSection, historySection } from "./tools.js";
import { localInputToUtc, stateAt, timeZone, utcOffset } from "./time.js";

const GENDERS = [["M", "Male (M)"], ["F", "Female (F)"]];
const PLATFORMS = [["android", "Android"], ["ios", "iOS"], ["web", "Web"]];

/** Renders the create form (`id` null) or the edit form of ad `id`. */
export async function renderForm(ctx, id) {
  let ad = null;
  if (id !== null) {
    replace(ctx.main, h("h1", {}, `Ad ${id}`), h("p", {}, "Loading…"));
    try {
      ad = (await api("GET", `ad/${id}`)).body;
    } catch (error) {
      if (!ctx.stillCurrent()) return;
      if (error instanceof ApiError && error.status === 404) {
        replace(ctx.main, h("h1", {}, `Ad ${id}`),
          h("p", { role: "alert" }, `There is no ad ${id}: it may have been deleted.`),
          h("p", {}, h("a", { href: "#/ads" }, "Back to the list")));
      } else if (!(error instanceof ApiError && error.status === 401)) {
        replace(ctx.main, h("h1", {}, `Ad ${id}`), h("p", {}, "The ad could not be loaded."));
        ctx.showError(error, () => renderForm(ctx, id));
      }
      return;
    }
    if (!ctx.stillCurrent()) return;
  }
  buildForm(ctx, ad);
}

function buildForm(ctx, ad) {
  const editing = ad !== null;
  const writable = ctx.canWrite();
  const headingText = !editing ? "New ad" : writable ? `Edit ad ${ad.id}` : `Ad ${ad.id}`;

  const title = field("Title", h("input", { id: "ad-title", type: "text", autocomplete: "off", value: editing ? ad.title : "" }));
  const start = timeField("Start", "ad-start", editing ? ad.startAt : null);
  const end = timeField("End", "ad-end", editing ? ad.endAt : null);
  const formError = h("div", { class: "form-error", id: "form-error", role: "alert" });
  const conditionsError = h("p", { class: "field-error", id: "conditions-error", role: "alert" });
  const groupList = h("ol", { class: "groups" });
  const noGroups = h("p", { class: "hint", id: "no-groups" }, "No groups: every user sees this ad.");
  const addGroup = h("button", { type: "button", onclick: () => add({}, true) }, "Add group");
  /** @type {ReturnType<typeof conditionGroup>[]} */
  const groups = [];

  const save = h("button", { type: "submit", class: "primary" }, "Save");
  const deleteButton = editing && writable
    ? h("button", { type: "button", class: "danger", onclick: remove }, "Delete")
    : null;
  const editable = h("fieldset", { class: "plain", disabled: !writable },
    h("legend", { class: "visually-hidden" }, "Ad"),
    title.element,
    h("p", { class: "hint tz" }, `Start and End are in your browser's time zone, ${timeZone()} (${utcOffset()} now). ` +
      "The UTC value beside each is what is stored."),
    h("div", { class: "row" }, start.element, end.element),
    h("section", { class: "conditions", "aria-labelledby": "audience-heading" },
      h("h2", { id: "audience-heading" }, "Audience"),
      h("p", { class: "hint" }, "A user sees the ad when any group matches. In a group, only what you fill in " +
        "restricts; a group with nothing filled in targets everyone."),
      conditionsError, noGroups, groupList, writable ? addGroup : null));
  const form = h("form", { class: "ad-form", novalidate: true, "aria-labelledby": "form-heading", onsubmit: submit },
    formError, editable,
    h("div", { class: "actions" }, writable ? save : null, deleteButton, h("a", { href: "#/ads" }, "Back to the list")));

  const meta = editing
    ? h("p", { class: "meta" }, "Now ", h("span", { class: `state state-${stateAt(ad)}` }, stateAt(ad)),
      ` · id ${ad.id}`)
    : null;
  replace(ctx.main, h("h1", { id: "form-heading" }, headingText), meta, form,
    editing ? explainSection(ctx, ad.id) : null,
    editing ? historySection(ctx, ad.id) : null);

  for (const group of editing ? ad.conditions : []) add(group, false);
  refreshGroups();

  /** The attempt being made: its body text and the key it is sent with. */
  let attempt = null;
  let busy = false;

  function add(values, focus) {
    const group = conditionGroup(values, () => {
      const index = groups.indexOf(group);
      groups.splice(index, 1);
      group.element.remove();
      refreshGroups();
      const next = groups[index] ?? groups[index - 1];
      if (next) next.focus();
      else addGroup.focus();
    });
    groups.push(group);
    groupList.append(group.element);
    refreshGroups();
    if (focus) group.focus();
  }

  function refreshGroups() {
    groups.forEach((group, i) => group.setNumber(i + 1));
    noGroups.hidden = groups.length > 0;
  }

  function clearErrors() {
    formError.replaceChildren();
    conditionsError.textContent = "";
    for (const slot of [title, start, end]) setError(slot, "");
    for (const group of groups) group.clearErrors();
  }

  function showFieldError(fieldName, message) {
    const slot = slotFor(fieldName);
    if (slot) {
      setError(slot, message);
      slot.control.focus();
      return;
    }
    if (fieldName && /^conditions/.test(fieldName)) {
      conditionsError.textContent = message;
      (groups[0] ?? addGroup).focus();
      return;
    }
    formError.replaceChildren(h("p", {}, fieldName ? `${fieldName}: ${message}` : message));
  }

  /** The control `title`, `endAt`, `conditions[1].country`, `conditions.ageEnd` name. */
  function slotFor(fieldName) {
    if (fieldName === "title") return title;
    if (fieldName === "startAt") return start;
    if (fieldName === "endAt") return end;
    const match = /^conditions(?:\[(\d+)\])?(?:\.(\w+))?$/.exec(fieldName ?? "");
    if (!match || (match[1] === undefined && match[2] === undefined)) return null;
    const group = groups[Number(match[1] ?? 0)];
    return group ? group.slot(match[2] ?? null) : null;
  }

  function body() {
    return {
      title: title.control.value,
      startAt: localInputToUtc(start.control.value),
      endAt: localInputToUtc(end.control.value),
      conditions: groups.map((group) => group.read()),
    };
  }

  async function submit(event) {
    event.preventDefault();
    if (busy || !writable) return;
    clearErrors();
    const local = groups.map((group, i) => [i, group.localError()]).find(([, error]) => error);
    if (local) {
      const [i, [key, message]] = local;
      showFieldError(`conditions[${i}].${key}`, message);
      return;
    }
    const sent = body();
    const text = JSON.stringify(sent);
    // One key per distinct body: a retry or a second click sends the same
    // body with the same key, so the writer creates the ad once.
    if (!editing && (attempt === null || attempt.text !== text)) attempt = { text, key: newIdempotencyKey() };
    busy = true;
    save.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      if (editing) {
        const stored = (await api("PUT", `ad/${ad.id}`, { body: sent })).body;
        ctx.notify(`Ad ${stored.id} saved.`);
        if (ctx.stillCurrent()) {
          buildForm(ctx, stored);
          ctx.main.querySelector("h1").focus();
        }
      } else {
        const stored = (await api("POST", "ad", { body: sent, idempotencyKey: attempt.key })).body;
        ctx.notify(`Ad ${stored.id} created.`);
        ctx.navigate(`#/ad/${stored.id}`);
      }
    } catch (error) {
      failed(error, () => form.requestSubmit());
    } finally {
      busy = false;
      save.disabled = false;
      form.removeAttribute("aria-busy");
    }
  }

  function failed(error, retry) {
    if (!(error instanceof ApiError)) {
      ctx.showError(error, retry);
      return;
    }
    if (error.status === 401) return;
    if (error.status === 400) showFieldError(error.field, error.message);
    else if (error.status === 403) {
      formError.replaceChildren(h("p", {}, `This token may only read, not change ads (403): ${error.message}`));
      ctx.becameReadOnly();
    } else if (error.status === 409) {
      formError.replaceChildren(h("p", {}, `Conflict (409): ${error.message}`));
    } else if (error.status === 404 && editing) {
      formError.replaceChildren(h("p", {}, `Ad ${ad.id} no longer exists: it was deleted.`));
    } else if (error.retryable) {
      ctx.showError(error, retry);
    } else {
      formError.replaceChildren(h("p", {}, `The writer refused this (${error.status} ${error.code}): ${error.message}`));
    }
  }

  async function remove() {
    const confirmed = await ctx.confirm({
      title: `Delete ad ${ad.id}?`,
      text: `“${ad.title}” stops being served everywhere. This cannot be undone.`,
    });
    if (!confirmed) return;
    clearErrors();
    deleteButton.disabled = true;
    try {
      await api("DELETE", `ad/${ad.id}`);
      ctx.notify(`Ad ${ad.id} deleted.`);
      ctx.navigate("#/ads");
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        ctx.notify(`Ad ${ad.id} was already deleted.`);
        ctx.navigate("#/ads");
      } else {
        failed(error, remove);
      }
    } finally {
      deleteButton.disabled = false;
    }
  }
}

/** One condition group's controls. */
function conditionGroup(values, onRemove) {
  const id = uid("group");
  const legend = h("legend", {});
  const error = h("p", { class: "field-error", id: `${id}-error`, role: "alert" });
  const ageFrom = field("Age from", h("input", { type: "number", min: "1", max: "100", step: "1", inputmode: "numeric", value: values.ageStart ?? "" }));
  const ageTo = field("Age to", h("input", { type: "number", min: "1", max: "100", step: "1", inputmode: "numeric", value: values.ageEnd ?? "" }));
  const gender = choices("Gender", GENDERS, values.gender ?? []);
  const country = countryPicker("Country", values.country ?? []);
  const platform = choices("Platform", PLATFORMS, values.platform ?? []);
  const removeButton = h("button", { type: "button", class: "quiet", onclick: onRemove }, "Remove group");
  const element = h("li", {}, h("fieldset", { class: "group", "aria-describedby": error.id },
    legend, error, h("div", { class: "row" }, ageFrom.element, ageTo.element),
    gender.element, country.element, platform.element, h("div", { class: "actions" }, removeButton)));
  const slots = { ageStart: ageFrom, ageEnd: ageTo, gender, country, platform };

  const age = (slot) => (slot.control.value === "" ? undefined : Number(slot.control.value));
  return {
    element,
    setNumber(n) {
      legend.textContent = `Group ${n}`;
      removeButton.setAttribute("aria-label", `Remove group ${n}`);
    },
    read() {
      const group = {};
      const from = age(ageFrom);
      const to = age(ageTo);
      if (from !== undefined) group.ageStart = from;
      if (to !== undefined) group.ageEnd = to;
      if (gender.value().length) group.gender = gender.value();
      if (country.value().length) group.country = country.value();
      if (platform.value().length) group.platform = platform.value();
      return group;
    },
    /** `[key, message]` for what the browser already knows is wrong. */
    localError() {
      for (const [key, slot, name] of [["ageStart", ageFrom, "Age from"], ["ageEnd", ageTo, "Age to"]]) {
        if (slot.control.validity.badInput) return [key, `${name} must be a whole number from 1 to 100`];
      }
      return null;
    },
    slot(key) {
      if (key === null || !(key in slots)) return { control: ageFrom.control, error, groupLevel: true };
      return slots[key];
    },
    clearErrors() {
      error.textContent = "";
      for (const slot of Object.values(slots)) setError(slot, "");
    },
    focus: () => ageFrom.control.focus(),
  };
}

/** Checkboxes in a fieldset named `legendText`; `value()` lists the checked ones. */
function choices(legendText, options, checked) {
  const id = uid("choices");
  const error = h("p", { class: "field-error", id: `${id}-error`, role: "alert" });
  const boxes = options.map(([value, text]) => {
    const box = h("input", { type: "checkbox", id: `${id}-${value}`, value, checked: checked.includes(value) });
    return [box, h("label", { class: "choice", for: box.id }, box, ` ${text}`)];
  });
  const element = h("fieldset", { class: "choices", "aria-describedby": error.id },
    h("legend", {}, legendText), h("div", { class: "choice-row" }, boxes.map(([, label]) => label)), error);
  return {
    element,
    control: boxes[0][0],
    error,
    value: () => boxes.filter(([box]) => box.checked).map(([box]) => box.value),
  };
}
