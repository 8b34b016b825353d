// The searchable multi-select for countries (the ARIA combobox pattern with
// a multi-selectable listbox): type a name or code to filter, ArrowUp and
// ArrowDown to move, Enter to add or remove the highlighted country, Escape
// to close the list. The chosen ones are listed as buttons that remove them.

import { COUNTRIES, countryName, searchCountries } from "./countries.js";
import { h, uid } from "./dom.js";

/**
 * Builds a picker labelled `labelText`, starting with `codes` chosen.
 * Returns `{element, control, error, value(), focus()}`; `control` is the
 * text box (where errors point), `error` its role="alert" error slot.
 */
export function countryPicker(labelText, codes = []) {
  const id = uid("country");
  const listId = `${id}-list`;
  const chosen = new Set(codes);
  let shown = [];
  let active = -1;

  const input = h("input", {
    id,
    type: "text",
    role: "combobox",
    autocomplete: "off",
    spellcheck: "false",
    "aria-autocomplete": "list",
    "aria-expanded": "false",
    "aria-controls": listId,
    placeholder: "Type a name or code",
  });
  const hint = h("p", { class: "hint", id: `${id}-hint` });
  const error = h("p", { class: "field-error", id: `${id}-error`, role: "alert" });
  input.setAttribute("aria-describedby", `${hint.id} ${error.id}`);
  const list = h("ul", {
    id: listId,
    role: "listbox",
    class: "options",
    "aria-multiselectable": "true",
    "aria-label": `${labelText}: choices`,
    hidden: true,
  });
  const chips = h("ul", { class: "chips", "aria-label": `Chosen ${labelText.toLowerCase()}` });
  const live = h("p", { class: "visually-hidden", "aria-live": "polite" });
  const element = h("div", { class: "field picker" },
    h("label", { for: id }, labelText), input, list, hint, chips, error, live);

  input.addEventListener("input", () => open(true));
  input.addEventListener("focus", () => open(false));
  input.addEventListener("click", () => open(false));
  input.addEventListener("blur", () => close());
  input.addEventListener("keydown", onKey);
  // Keep the focus in the text box while an option is clicked.
  list.addEventListener("mousedown", (event) => event.preventDefault());
  list.addEventListener("click", (event) => {
    const option = event.target.closest("[role=option]");
    if (option) toggle(option.dataset.code);
  });

  function open(fromTyping) {
    shown = searchCountries(input.value);
    if (fromTyping || active >= shown.length) active = shown.length ? 0 : -1;
    renderOptions();
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  function close() {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function renderOptions() {
    const items = shown.map(([code, name], i) => h("li", {
      id: `${id}-opt-${code}`,
      role: "option",
      "data-code": code,
      "aria-selected": chosen.has(code) ? "true" : "false",
      class: i === active ? "active" : null,
    }, `${name} (${code})`));
    if (items.length === 0) items.push(h("li", { class: "empty", role: "presentation" }, "No country matches"));
    list.replaceChildren(...items);
    markActive();
  }

  function markActive() {
    const option = active >= 0 ? document.getElementById(`${id}-opt-${shown[active][0]}`) : null;
    for (const item of list.querySelectorAll(".active")) item.classList.remove("active");
    if (option) {
      option.classList.add("active");
      input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function onKey(event) {
    const isOpen = !list.hidden;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!isOpen) open(false);
      if (shown.length === 0) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      active = active < 0 ? 0 : (active + step + shown.length) % shown.length;
      markActive();
    } else if (event.key === "Enter" && isOpen && active >= 0) {
      event.preventDefault();
      toggle(shown[active][0]);
    } else if (event.key === "Escape" && isOpen) {
      event.preventDefault();
      event.stopPropagation();
      close();
    }
  }

  function toggle(code) {
    const added = !chosen.has(code);
    if (added) chosen.add(code);
    else chosen.delete(code);
    renderChips();
    if (!list.hidden) renderOptions();
    live.textContent = `${countryName(code)} ${added ? "added" : "removed"}; ${chosen.size} chosen.`;
  }

  function renderChips() {
    const ordered = COUNTRIES.filter(([code]) => chosen.has(code));
    chips.replaceChildren(...ordered.map(([code, name]) => h("li", {},
      h("button", {
        type: "button",
        class: "chip",
        "aria-label": `Remove ${name} (${code})`,
        onclick: () => {
          toggle(code);
          input.focus();
        },
      }, `${name} (${code})`, h("span", { "aria-hidden": "true" }, " ×")))));
    hint.textContent = chosen.size === 0
      ? "None chosen: any country."
      : `${chosen.size} chosen.`;
  }

  renderChips();
  return {
    element,
    control: input,
    error,
    value: () => COUNTRIES.filter(([code]) => chosen.has(code)).map(([code]) => code),
    focus: () => input.focus(),
  };
}
