// Building the page from code (never from HTML strings, so an ad's title is
// always text), and small helpers every screen shares.

import { localInputToUtc, utcToLocalInput } from "./time.js";

/**
 * Creates an element. `props` sets attributes; `on<event>` functions become
 * listeners; `value`, `checked` and `disabled` set properties (`value` after
 * the children, so a <select> can pick one of its options). Children may be
 * nodes, strings, arrays of them, or null.
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  let value;
  for (const [key, given] of Object.entries(props)) {
    if (given === null || given === undefined || given === false) continue;
    if (key.startsWith("on") && typeof given === "function") {
      element.addEventListener(key.slice(2), given);
    } else if (key === "class") {
      element.className = given;
    } else if (key === "for") {
      element.htmlFor = given;
    } else if (key === "value") {
      value = given;
    } else if (key === "checked" || key === "disabled") {
      element[key] = Boolean(given);
    } else {
      element.setAttribute(key, given === true ? "" : String(given));
    }
  }
  append(element, children);
  if (value !== undefined) element.value = value;
  return element;
}

/** Appends nodes, strings and (nested) arrays of them; skips null. */
export function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.append(child instanceof Node ? child : String(child));
  }
}

let lastId = 0;

/** A page-unique element id. */
export function uid(prefix) {
  lastId += 1;
  return `${prefix}-${lastId}`;
}

/**
 * A labelled control with its hint and error slots: the label names it, and
 * `aria-describedby` points at the hint and the error, which is a
 * `role="alert"` region so that a new error is announced.
 */
export function field(labelText, control, { hint = null, className = "field" } = {}) {
  const id = control.id || uid("control");
  control.id = id;
  const hintElement = hint === null ? null : h("p", { class: "hint", id: `${id}-hint` }, hint);
  const error = h("p", { class: "field-error", id: `${id}-error`, role: "alert" });
  const describedBy = [hintElement && hintElement.id, error.id].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", describedBy);
  const element = h("div", { class: className }, h("label", { for: id }, labelText), control, hintElement, error);
  return { element, control, hint: hintElement, error };
}

/** Shows `message` as the error of a control (or clears it with ""). */
export function setError(slot, message) {
  slot.error.textContent = message;
  if (slot.control) {
    if (message) slot.control.setAttribute("aria-invalid", "true");
    else slot.control.removeAttribute("aria-invalid");
  }
}

/** Replaces everything inside `parent`. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
}

/** A datetime-local control with the UTC value it means shown beside it. */
export function timeField(labelText, id, iso, emptyText = "not set") {
  const input = h("input", { id, type: "datetime-local", step: "1", value: iso ? utcToLocalInput(iso) : "" });
  const slot = field(labelText, input, { hint: "" });
  slot.hint.classList.add("utc");
  const show = () => {
    const utc = localInputToUtc(input.value);
    slot.hint.textContent = `UTC: ${utc ?? emptyText}`;
  };
  input.addEventListener("input", show);
  input.addEventListener("change", show);
  show();
  return slot;
}
