// Times: the API speaks UTC (`2024-01-01T00:00:00.000Z`); people enter and
// read them in the browser's time zone through <input type="datetime-local">.

/** The browser's IANA time zone, e.g. `Asia/Taipei`. */
export function timeZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
}

/** `UTC+08:00` for the offset in force at `date` in the browser's zone. */
export function utcOffset(date = new Date()) {
  const minutes = -date.getTimezoneOffset();
  const sign = minutes < 0 ? "-" : "+";
  const abs = Math.abs(minutes);
  return `UTC${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

const LOCAL = /^(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/;

/**
 * A datetime-local value, read in the browser's zone, as the API's UTC text;
 * null when empty or not a complete date and time.
 */
export function localInputToUtc(value) {
  const match = LOCAL.exec(value);
  if (!match) return null;
  const [, year, month, day, hour, minute, second = "0", fraction = "0"] = match;
  const date = new Date(2000, Number(month) - 1, Number(day), Number(hour), Number(minute),
    Number(second), Number(fraction.padEnd(3, "0")));
  date.setFullYear(Number(year), Number(month) - 1, Number(day));
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** The API's UTC text as a datetime-local value in the browser's zone. */
export function utcToLocalInput(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  let text = `${String(date.getFullYear()).padStart(4, "0")}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`;
  const seconds = date.getSeconds();
  const millis = date.getMilliseconds();
  if (seconds !== 0 || millis !== 0) text += `:${pad(seconds)}`;
  if (millis !== 0) text += `.${String(millis).padStart(3, "0")}`;
  return text;
}

/** A short local rendering for lists, to the minute: `2024-01-01 08:00`. */
export function formatLocal(iso) {
  const value = utcToLocalInput(iso);
  return value ? value.slice(0, 16).replace("T", " ") : iso;
}

/**
 * The ad's state at `now` (milliseconds), by the Public API's strict rule:
 * scheduled while now ≤ startAt, active while startAt < now < endAt, ended
 * from endAt on.
 */
export function stateAt(ad, now = Date.now()) {
  const start = Date.parse(ad.startAt);
  const end = Date.parse(ad.endAt);
  if (now <= start) return "scheduled";
  if (now < end) return "active";
  return "ended";
}

function pad(number) {
  return String(number).padStart(2, "0");
}
