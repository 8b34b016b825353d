// The Admin API as the console uses it: every call carries the token from
// sessionStorage (this tab only; never a URL or a cookie), errors become
// ApiError values with the API's `code`, `message` and `field`.

const TOKEN = "adcast.console.token";
const SCOPE = "adcast.console.scope";
const LABEL = "adcast.console.label";
/** A call that takes longer is given up (shown like a 503: retry). */
const TIMEOUT_MS = 20000;

/**
 * The signed-in token, its scope (`admin`, `read`, or `open` when the
 * writer has no tokens) and its label.
 */
export const session = {
  token: () => sessionStorage.getItem(TOKEN),
  scope: () => sessionStorage.getItem(SCOPE) || "admin",
  label: () => sessionStorage.getItem(LABEL),
  canWrite: () => session.scope() !== "read",
  signIn(token, scope, label) {
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(SCOPE, scope);
    if (label) sessionStorage.setItem(LABEL, label);
    else sessionStorage.removeItem(LABEL);
  },
  setScope(scope) {
    sessionStorage.setItem(SCOPE, scope);
  },
  signOut() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(SCOPE);
    sessionStorage.removeItem(LABEL);
  },
};

/** An answer other than 2xx, or no answer at all (`status` 0). */
export class ApiError extends Error {
  constructor(status, code, message, field = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
  }

  /** Worth trying again later: the writer is down, busy or unreachable. */
  get retryable() {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504;
  }

  /** The route itself does not exist on this writer (not a missing ad). */
  get noRoute() {
    return this.status === 404 && /^no route/.test(this.message);
  }
}

let onUnauthorized = () => {};

/** What to do when a call is answered 401 (the app goes back to sign-in). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/**
 * Calls `method /api/v1/<path>`. `query` values that are "", null or
 * undefined are left out. Resolves to `{status, body, headers}`; rejects
 * with an ApiError. `token` overrides the session's (sign-in uses it) and
 * then a 401 is only rejected, not handled.
 */
export async function api(method, path, { query = null, body = undefined, idempotencyKey = null, token = null } = {}) {
  const url = new URL(`../api/v1/${path}`, document.baseURI);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== "" && value !== null && value !== undefined) url.searchParams.set(name, String(value));
  }
  const headers = { Accept: "application/json" };
  const bearer = token ?? session.token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
      signal: abort.signal,
    });
  } catch (error) {
    const timedOut = error && error.name === "AbortError";
    throw new ApiError(0, "unreachable", timedOut
      ? "the writer did not answer in time"
      : "the writer could not be reached");
  } finally {
    clearTimeout(timer);
  }
  const text = await response.text().catch(() => "");
  let json = null;
  if (text && (response.headers.get("Content-Type") || "").startsWith("application/json")) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (response.ok) return { status: response.status, body: json, headers: response.headers };
  const error = json && json.error ? json.error : {};
  const failure = new ApiError(response.status, error.code || `http_${response.status}`,
    error.message || `HTTP ${response.status} ${response.statusText}`.trim(), error.field ?? null);
  if (response.status === 401 && token === null) onUnauthorized(failure);
  throw failure;
}

/**
 * A fresh Idempotency-Key: 128 random bits. crypto.getRandomValues works on
 * plain-HTTP origins too (crypto.randomUUID does not).
 */
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * Signs in: asks the writer what the token may do. A writer without the
 * introspection route (404) is asked for one list item instead, which
 * checks the token, and the token is taken as an admin token.
 */
export async function introspect(token) {
  try {
    const answer = await api("GET", "admin/whoami", { token });
    const given = answer.body && answer.body.scope;
    // An internal token (an edge's) may use no admin route: refuse it here
    // rather than on every screen.
    if (given === "internal") {
      throw new ApiError(403, "forbidden", "an internal token may only fetch snapshots");
    }
    // `open`: the writer has no tokens configured, everything is allowed.
    const scope = given === "read" ? "read" : given === "open" ? "open" : "admin";
    return { scope, label: (answer.body && answer.body.label) || null };
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
    await api("GET", "admin/ad", { token, query: { limit: 1 } });
    return { scope: "admin", label: null };
  }
}
