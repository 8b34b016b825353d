// The console's entry point: sign-in, the screens (by the URL's fragment,
// which never holds the token), notices, the retry message and the
// confirmation dialog. It keeps no state on the server.

import { ApiError, introspect, session, setUnauthorizedHandler } from "./api.js";
import { field, h, replace, setError } from "./dom.js";
import { renderForm } from "./form.js";
import { renderList } from "./list.js";
import { renderPreview } from "./tools.js";

const main = document.getElementById("main");
const alertBox = document.getElementById("alert");
const statusBox = document.getElementById("status");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

/** What every screen gets to work with. */
const ctx = {
  main,
  notify,
  showError,
  clearAlert,
  navigate,
  confirm: confirmDialog,
  canWrite: () => session.canWrite(),
  /** A write was refused with 403: the token can only read. */
  becameReadOnly() {
    session.setScope("read");
    showNav();
  },
};

/** Whether a message came after the last screen change (it stays for the next). */
let noticePending = false;

/** A message that something worked, announced politely. */
function notify(text) {
  noticePending = true;
  statusBox.textContent = "";
  // A new text node each time, so that the same message is announced again.
  requestAnimationFrame(() => { statusBox.textContent = text; });
}

/**
 * Shows an error at the top of the page. For an unavailable or unreachable
 * writer it says so and offers Retry, which runs `retry` again.
 */
function showError(error, retry = null) {
  const message = error instanceof ApiError ? error.message : String(error);
  const children = [];
  if (error instanceof ApiError && error.retryable) {
    const what = error.status === 0 ? "cannot be reached" : `is unavailable (${error.status})`;
    children.push(h("p", {}, `The writer ${what}: ${message}. Nothing was lost; try again in a moment.`));
  } else if (error instanceof ApiError && error.status) {
    children.push(h("p", {}, `The writer refused this (${error.status} ${error.code}): ${message}`));
  } else {
    children.push(h("p", {}, `Something went wrong: ${message}`));
  }
  if (retry) {
    children.push(h("button", {
      type: "button",
      onclick: () => {
        clearAlert();
        retry();
      },
    }, "Retry"));
  }
  replace(alertBox, ...children);
}

function clearAlert() {
  alertBox.replaceChildren();
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

/**
 * A modal confirmation (<dialog>: the rest of the page is inert, Tab stays
 * inside, Escape cancels). Resolves true when confirmed.
 */
function confirmDialog({ title, text, confirmLabel = "Yes, delete" }) {
  const dialog = document.getElementById("confirm");
  const ok = document.getElementById("confirm-ok");
  const cancel = document.getElementById("confirm-cancel");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  ok.textContent = confirmLabel;
  const opener = document.activeElement;
  return new Promise((resolve) => {
    const finish = (answer) => {
      ok.removeEventListener("click", yes);
      cancel.removeEventListener("click", no);
      dialog.removeEventListener("close", closed);
      if (dialog.open) dialog.close();
      if (opener && opener.isConnected) opener.focus();
      resolve(answer);
    };
    const yes = () => finish(true);
    const no = () => finish(false);
    const closed = () => finish(false);
    ok.addEventListener("click", yes);
    cancel.addEventListener("click", no);
    dialog.addEventListener("close", closed);
    dialog.showModal();
    cancel.focus();
  });
}

function showNav() {
  const signedIn = Boolean(session.token());
  nav.hidden = !signedIn;
  const label = session.label();
  const scope = { read: "read only", open: "open: the writer has no tokens" }[session.scope()] ?? "admin";
  who.textContent = signedIn ? `Signed in${label ? ` as ${label}` : ""} (${scope})` : "";
}

function markCurrentNav(name) {
  for (const [id, screen] of [["nav-ads", "list"], ["nav-preview", "preview"]]) {
    const link = document.getElementById(id);
    if (screen === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/** `#/ads?state=active` → `{name: "list", params}`; `#/ad/7` → edit. */
function parseHash() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = hash.split("?");
  const params = new URLSearchParams(query);
  const ad = /^ad\/(\d+)$/.exec(path);
  if (ad) return { name: "edit", id: ad[1], params };
  if (path === "new") return { name: "new", params };
  if (path === "preview") return { name: "preview", params };
  return { name: "list", params };
}

let screenCount = 0;

async function route() {
  clearAlert();
  if (!noticePending) statusBox.textContent = "";
  noticePending = false;
  showNav();
  if (!session.token()) {
    renderSignIn();
    return;
  }
  const screen = parseHash();
  markCurrentNav(screen.name === "preview" ? "preview" : "list");
  screenCount += 1;
  const mine = screenCount;
  const stillCurrent = () => mine === screenCount;
  const options = { ...ctx, stillCurrent };
  if (screen.name === "edit") await renderForm(options, screen.id);
  else if (screen.name === "new") {
    if (!session.canWrite()) {
      navigate("#/ads");
      return;
    }
    await renderForm(options, null);
  } else if (screen.name === "preview") renderPreview(options);
  else await renderList(options, screen.params);
  if (stillCurrent()) focusHeading();
}

// Moves focus to the new screen's heading, unless the user already moved
// it into the screen while it was loading (a list is drawn before its rows
// arrive: a control focused meanwhile keeps the focus).
function focusHeading() {
  const heading = main.querySelector("h1");
  if (heading && !main.contains(document.activeElement)) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
  document.title = heading ? `${heading.textContent} · adcast console` : "adcast console";
}

function renderSignIn(message = "") {
  const token = field("Token", h("input", {
    id: "token",
    type: "password",
    name: "token",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  }), {
    hint: "An admin token, or a read token to look without changing anything. It stays in this tab " +
      "(sessionStorage) and is sent only to this writer.",
  });
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "card narrow", novalidate: true, onsubmit: signIn },
    token.element, h("div", { class: "actions" }, submit));
  replace(main, h("h1", {}, "Sign in"), form);
  focusHeading();
  token.control.focus();
  if (message) setError(token, message);

  async function signIn(event) {
    event.preventDefault();
    const value = token.control.value.trim();
    setError(token, "");
    if (!value) {
      setError(token, "Enter a token.");
      token.control.focus();
      return;
    }
    submit.disabled = true;
    try {
      const { scope, label } = await introspect(value);
      session.signIn(value, scope, label);
      notify(`Signed in${scope === "read" ? " with a read-only token" : ""}.`);
      route();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        setError(token, "That token was refused (401). Check it and try again.");
        token.control.focus();
      } else if (error instanceof ApiError && error.status === 403) {
        setError(token, "That token may not use the Admin API (403): it is an internal token, for edges.");
        token.control.focus();
      } else {
        showError(error, () => form.requestSubmit());
      }
    } finally {
      submit.disabled = false;
    }
  }
}

setUnauthorizedHandler(() => {
  session.signOut();
  showNav();
  renderSignIn("Your token was refused (401): it may have been revoked. Sign in again.");
});

document.getElementById("sign-out").addEventListener("click", () => {
  session.signOut();
  notify("Signed out.");
  route();
});

// The fragment is the router's: the skip link moves the focus instead.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

window.addEventListener("hashchange", route);
route();
