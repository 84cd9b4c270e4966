// Building the page: elements from data, text always as text (never HTML).

/**
 * `h("button", {class: "x", onclick: fn}, "Save")`. Attributes named `on…` become
 * listeners; `text` sets textContent; `null`/`false` children and attributes are
 * skipped. Nothing is ever parsed as HTML.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "text") {
      el.textContent = value;
    } else if (key === "class") {
      el.className = value;
    } else if (key in el && typeof value !== "string") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace everything inside `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]}]/g;
const MENTION_RE = /(^|\s)@([\p{L}\p{N}_.-]{1,40})/gu;

/**
 * A message's text as nodes: `http(s)` links become links that open elsewhere with
 * no referrer, `@name` becomes a highlighted mention. `isMe(name)` says whether a
 * mention names the reader.
 */
export function richText(text, isMe = () => false) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    mentions(frag, text.slice(last, m.index), isMe);
    frag.append(h("a", { href: m[0], target: "_blank", rel: "noopener noreferrer nofollow" }, m[0]));
    last = m.index + m[0].length;
  }
  mentions(frag, text.slice(last), isMe);
  return frag;
}

function mentions(frag, text, isMe) {
  let last = 0;
  for (const m of text.matchAll(MENTION_RE)) {
    const start = m.index + m[1].length;
    frag.append(text.slice(last, start));
    frag.append(h("span", { class: isMe(m[2]) ? "mention me" : "mention" }, "@" + m[2]));
    last = start + 1 + m[2].length;
  }
  frag.append(text.slice(last));
}

/** The `@names` in a text. */
export function mentionedNames(text) {
  return [...text.matchAll(MENTION_RE)].map((m) => m[2]);
}

/** Up to two initials of a display name. */
export function initials(name) {
  const words = String(name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : [words[0] || "?"];
  return letters.map((w) => [...w][0].toUpperCase()).join("");
}

/** A stable colour class for an id. */
export function colorClass(id) {
  let hash = 0;
  for (const c of String(id)) hash = (hash * 31 + c.codePointAt(0)) >>> 0;
  return "av-" + (hash % 8);
}

export function avatar(id, name, small = false) {
  return h("span", { class: `avatar ${colorClass(id)}${small ? " small" : ""}`, "aria-hidden": "true" }, initials(name));
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
export function clock(ts) {
  return timeFmt.format(new Date(ts));
}

/** "just now", "5 min", "2 h" since `iso`. */
export function age(iso, now = Date.now()) {
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d`;
}

let toastTimer;
/** A short message at the bottom of the screen (also read out by screen readers). */
export function toast(text) {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = text;
  el.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("show"), 2600);
}

/** Copy `text`, saying whether it worked. */
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast("Link copied");
  } catch {
    toast("Select the link and copy it");
  }
}
