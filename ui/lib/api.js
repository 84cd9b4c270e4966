// The HTTP API as the page uses it: a browser session (the refresh token lives in an
// HttpOnly cookie script never sees; the access token only in memory), errors in
// words a person understands, and requests that refresh the access token first.

/** What each stable `error.code` means to a person. */
const MESSAGES = {
  invalid_json: "Something went wrong sending that. Please try again.",
  invalid_body: "Something in the form is not right.",
  unauthenticated: "Please log in first.",
  invalid_token: "Your session ended. Please log in again.",
  token_expired: "Your session ended. Please log in again.",
  invalid_credentials: "That email/username and password do not match.",
  invalid_refresh_token: "Your session ended. Please log in again.",
  refresh_token_reused: "For your safety you were logged out everywhere. Please log in again.",
  invalid_room_token: "Your pass for this room is no longer valid. Open the invite link again.",
  wrong_password: "That password is not right.",
  not_creator: "Only the person who opened the room can do that.",
  csrf_failed: "The request was refused for safety. Reload the page and try again.",
  not_found: "There is nothing here.",
  room_not_found: "This room does not exist (any more).",
  invite_not_found: "This invite link is not valid. Check that you copied all of it.",
  email_taken: "An account with this email already exists. Log in instead?",
  username_taken: "That username is taken. Try another one.",
  room_full: "This room is full right now.",
  room_limit_reached: "You already have as many open rooms as allowed. Close one first.",
  invite_limit_reached: "This room has as many invite links as allowed. Revoke one first.",
  room_not_ready: "The room is still starting. Try again in a moment.",
  room_ended: "This room has ended.",
  room_closed: "This room was closed.",
  invite_revoked: "This invite link was revoked by the person who made it.",
  invite_expired: "This invite link has expired. Ask for a new one.",
  invite_used_up: "This invite link has been used as many times as allowed. Ask for a new one.",
  room_locked: "The room is locked: nobody new can come in right now.",
  payload_too_large: "That is too long.",
  unsupported_media_type: "Something went wrong sending that. Please try again.",
  validation_failed: "Something in the form is not right.",
  rate_limited: "Too many tries. Wait a moment and try again.",
  internal: "Something went wrong on our side. Please try again.",
  keys_unavailable: "The service is starting up. Try again in a moment.",
  not_ready: "The service is starting up. Try again in a moment.",
  room_start_failed: "The room could not be started. Please try again.",
  at_capacity: "The service is at capacity right now. Try again in a minute.",
  shutting_down: "The service is restarting. Try again in a moment.",
  busy: "The service is busy. Try again in a few seconds.",
};

export class ApiError extends Error {
  constructor(status, code, serverMessage) {
    // Validation messages name the field; they are written for people already.
    const friendly = code === "validation_failed" && serverMessage ? serverMessage : MESSAGES[code];
    super(friendly || serverMessage || `Request failed (${status}).`);
    this.status = status;
    this.code = code || "network";
    this.serverMessage = serverMessage;
  }
}

/** The signed-in person, or null. Only ever in memory. */
export const session = { user: null, token: null, expiresAt: 0, ttl: 0 };
const listeners = new Set();
/** `fn(user)` on every log-in, log-out and profile change. */
export function onSession(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
const tabs = "BroadcastChannel" in self ? new BroadcastChannel("rendezvous-session") : null;
tabs?.addEventListener("message", (e) => {
  // Another tab logged out: so are we.
  if (e.data === "logout" && session.user) setSession(null, false);
});

let refreshTimer;
function setSession(s, broadcast = true) {
  clearTimeout(refreshTimer);
  if (s) {
    session.user = s.user;
    session.token = s.accessToken;
    session.expiresAt = Date.now() + s.expiresIn * 1000;
    session.ttl = s.expiresIn * 1000;
    // Refresh at 80 % of the lifetime: a token never runs out in the middle of a call.
    refreshTimer = setTimeout(() => refresh().catch(() => {}), s.expiresIn * 800);
  } else {
    session.user = null;
    session.token = null;
    session.expiresAt = 0;
    if (broadcast) tabs?.postMessage("logout");
  }
  for (const fn of listeners) fn(session.user);
}

async function call(method, path, body, { auth = true, csrf = false } = {}) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (csrf) headers["x-rendezvous-csrf"] = "1";
  if (auth) {
    // Nearly spent (the last 20 % of its life, at most 30 s): refresh it first.
    if (session.expiresAt - Date.now() < Math.min(30_000, session.ttl * 0.2)) await refresh().catch(() => {});
    if (!session.token) throw new ApiError(401, "unauthenticated");
    headers.authorization = "Bearer " + session.token;
  }
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, "network", "Cannot reach Rendezvous. Check your connection.");
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = new ApiError(res.status, data?.error?.code, data?.error?.message);
    err.retryAfter = Number(res.headers.get("retry-after")) || 0;
    throw err;
  }
  return data;
}

/** An API call with the access token; one retry after a refresh if it had expired. */
export async function api(method, path, body) {
  try {
    return await call(method, path, body);
  } catch (e) {
    if (e.status === 401 && (e.code === "token_expired" || e.code === "invalid_token")) {
      await refresh();
      return call(method, path, body);
    }
    throw e;
  }
}

/** A call that needs no log-in (the invite preview). */
export function publicApi(method, path) {
  return call(method, path, undefined, { auth: false });
}

let refreshing = null;
/**
 * Trade the session cookie for a new access token. Tabs take turns (Web Locks): a
 * refresh token works once, and two tabs presenting the same one at once would look
 * like theft and end the login everywhere.
 */
export function refresh() {
  refreshing ??= (async () => {
    const run = () =>
      call("POST", "/api/browser/sessions/refresh", undefined, { auth: false, csrf: true });
    try {
      const s = navigator.locks ? await navigator.locks.request("rendezvous-refresh", run) : await run();
      setSession(s);
      return s.user;
    } catch (e) {
      if (e.status === 401) setSession(null, false);
      throw e;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/**
 * Whether a session cookie may exist. The refresh cookie is HttpOnly; the service sets
 * a companion `rdv_session=1` (no secret in it) beside it, so a visitor's page does not
 * ask for a session that cannot be there.
 */
export function maybeLoggedIn() {
  return document.cookie.split(/;\s*/).includes("rdv_session=1");
}

/** On page load: pick up the session the cookie holds, if any. */
export async function restore() {
  if (!maybeLoggedIn()) return null;
  try {
    return await refresh();
  } catch {
    return null;
  }
}

export async function login(loginName, password) {
  const s = await call("POST", "/api/browser/sessions", { login: loginName, password }, { auth: false, csrf: true });
  setSession(s);
  return s.user;
}

export async function register(form) {
  const s = await call("POST", "/api/browser/users", form, { auth: false, csrf: true });
  setSession(s);
  return s.user;
}

export async function logout() {
  try {
    await call("DELETE", "/api/browser/sessions", undefined, { auth: false, csrf: true });
  } finally {
    setSession(null);
  }
}
