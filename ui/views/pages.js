// The pages around the room: welcome, log in, register, my rooms, new room, and the
// invite link.

import { age, copy, h, mount, toast } from "../lib/dom.js";
import { api, login as logIn, publicApi, register as signUp, session } from "../lib/api.js";
import * as rooms from "../lib/rooms.js";

function title(text) {
  document.body.dataset.title = text ? `${text} · Rendezvous` : "Rendezvous";
  document.title = document.body.dataset.title;
}

const KINDS = { chat: "Chat", video: "Video", both: "Chat + video" };

/** Where to go after logging in: only a path on this site. */
function nextPath(ctx) {
  const next = ctx.params.get("next") || "";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/rooms";
}

function errorBox() {
  return h("p", { class: "error", role: "alert", hidden: true });
}
function showError(box, err) {
  box.textContent = err.message || String(err);
  box.hidden = false;
}

/** A button that asks once more before `action`. */
export function confirmButton(label, confirmLabel, action, cls = "danger secondary") {
  let armed = false;
  let timer;
  const b = h("button", {
    type: "button",
    class: cls,
    onclick: async () => {
      if (!armed) {
        armed = true;
        b.textContent = confirmLabel;
        timer = setTimeout(() => {
          armed = false;
          b.textContent = label;
        }, 4000);
        return;
      }
      clearTimeout(timer);
      b.disabled = true;
      try {
        await action();
      } finally {
        b.disabled = false;
        armed = false;
        b.textContent = label;
      }
    },
  }, label);
  return b;
}

async function submitting(form, box, fn) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  box.hidden = true;
  try {
    await fn();
  } catch (e) {
    showError(box, e);
  } finally {
    button.disabled = false;
  }
}

export function welcome(ctx) {
  title("");
  const actions = session.user
    ? [
        h("a", { class: "button", href: "/rooms/new", "data-link": "" }, "Open a room"),
        h("a", { class: "button secondary", href: "/rooms", "data-link": "" }, "My rooms"),
      ]
    : [
        h("a", { class: "button", href: "/register", "data-link": "" }, "Create an account"),
        h("a", { class: "button secondary", href: "/login", "data-link": "" }, "Log in"),
      ];
  mount(
    ctx.main,
    h(
      "div",
      { class: "page" },
      h(
        "section",
        { class: "hero" },
        h("h1", {}, "Meet in rooms that vanish when you are done."),
        h(
          "p",
          {},
          "Open a chat or video room, send the invite link, and talk. Nothing said or shown is stored: when you close the room, it is gone, everywhere.",
        ),
        h("div", { class: "row" }, actions),
      ),
      h(
        "div",
        { class: "features" },
        feature("Chat that stays in the room", "Messages, reactions, edits and read receipts live only in the room's memory. Close it and nothing is left."),
        feature("Invite links you control", "Share a link, limit it to a few people or a few hours, revoke it at any time."),
        feature("Hosts stay in charge", "Lock the room, mute or remove someone, end it for everyone with one click."),
        feature("Yours to run", "One binary on a laptop, or a pod per room on Kubernetes. No tracking, no ads."),
      ),
    ),
  );
}

function feature(head, text) {
  return h("div", { class: "card" }, h("h2", {}, head), h("p", {}, text));
}

/** The log-in and registration pages: one form, then back to where the person was going. */
function authPage(ctx, { heading, intro, fields, submit, other, otherText, send }) {
  const box = errorBox();
  const next = nextPath(ctx);
  const fromLink = ctx.params.get("next")?.startsWith("/join/");
  const keepNext = ctx.params.get("next") ? "?next=" + encodeURIComponent(next) : "";
  const form = h(
    "form",
    {
      class: "card",
      novalidate: true,
      onsubmit: (e) => {
        e.preventDefault();
        submitting(form, box, async () => {
          await send(form.elements);
          ctx.navigate(next, { replace: true });
        });
      },
    },
    h("h1", {}, heading),
    fromLink ? h("p", { class: "muted" }, intro) : null,
    fields.map(([id, label, attrs, hint]) => [
      h("label", { for: id }, label, hint ? h("span", { class: "hint" }, " " + hint) : null),
      h("input", { id, name: id, required: true, ...attrs }),
    ]),
    box,
    h("div", { class: "spread" },
      h("button", { type: "submit" }, submit),
      h("a", { href: other + keepNext, "data-link": "" }, otherText),
    ),
  );
  mount(ctx.main, h("div", { class: "narrow" }, form));
}

export function login(ctx) {
  title("Log in");
  authPage(ctx, {
    heading: "Log in",
    intro: "Log in and you go straight into the room.",
    fields: [
      ["login", "Email or username", { autocomplete: "username", autofocus: true }],
      ["password", "Password", { type: "password", autocomplete: "current-password" }],
    ],
    submit: "Log in",
    other: "/register",
    otherText: "No account yet? Register",
    send: async (f) => {
      await logIn(f.login.value.trim(), f.password.value);
      rooms.loadMine();
    },
  });
}

export function register(ctx) {
  title("Register");
  authPage(ctx, {
    heading: "Create your account",
    intro: "Register and you go straight into the room.",
    fields: [
      ["displayName", "Your name", { autocomplete: "name", autofocus: true, maxlength: 64 }, "(what others see)"],
      ["username", "Username", { autocomplete: "username", maxlength: 32 }, "(letters, digits, _ . -)"],
      ["email", "Email", { type: "email", autocomplete: "email" }],
      ["password", "Password", { type: "password", autocomplete: "new-password", minlength: 8 }, "(at least 8 characters)"],
    ],
    submit: "Create account",
    other: "/login",
    otherText: "Have an account? Log in",
    send: (f) =>
      signUp({
        displayName: f.displayName.value.trim(),
        username: f.username.value.trim(),
        email: f.email.value.trim(),
        password: f.password.value,
      }),
  });
}

export function myRooms(ctx) {
  title("My rooms");
  const list = h("ul", { class: "rooms", "aria-busy": "true" });
  const box = errorBox();
  mount(
    ctx.main,
    h("div", { class: "page" },
      h("div", { class: "spread" }, h("h1", {}, "My rooms"), h("a", { class: "button", href: "/rooms/new", "data-link": "" }, "New room")),
      box,
      list,
    ),
  );
  const draw = (mine) => {
    list.removeAttribute("aria-busy");
    if (!mine.length) {
      mount(list, h("li", { class: "card empty" }, "No live rooms. ", h("a", { href: "/rooms/new", "data-link": "" }, "Open one"), " and invite people with its link."));
      return;
    }
    mount(list, mine.map((r) => h("li", { class: "card", "data-room": r.id },
      h("div", {},
        h("h2", {}, h("a", { href: "/r/" + encodeURIComponent(r.id), "data-link": "" }, r.title)),
        h("div", { class: "meta" },
          h("span", { class: "kind" }, KINDS[r.kind] || r.kind),
          h("span", {}, r.participants == null ? "" : `${r.participants} in the room`),
          h("span", {}, "opened " + age(r.createdAt)),
          r.state !== "ready" ? h("span", {}, r.state) : null,
        ),
      ),
      h("div", { class: "row" },
        r.inviteUrl ? h("button", { type: "button", class: "secondary", onclick: () => copy(r.inviteUrl) }, "Copy invite link") : null,
        h("a", { class: "button", href: "/r/" + encodeURIComponent(r.id), "data-link": "" }, "Open"),
        confirmButton("Close", "Close for everyone?", async () => {
          try {
            await api("DELETE", "/api/rooms/" + encodeURIComponent(r.id));
            toast("Room closed");
            rooms.forget(r.id);
            draw(await rooms.loadMine());
          } catch (e) {
            showError(box, e);
          }
        }),
      ),
    )));
  };
  rooms.loadMine().then(draw);
}

export function newRoom(ctx) {
  title("New room");
  const box = errorBox();
  const kind = (value, label, text, checked) =>
    h("label", { class: "choice" },
      h("input", { type: "radio", name: "kind", value, checked }),
      h("span", {}, h("strong", {}, label), h("span", { class: "hint" }, text)),
    );
  const num = (id, label, hint, attrs) => [
    h("label", { for: id }, label, h("span", { class: "hint" }, " " + hint)),
    h("input", { id, name: id, type: "number", inputmode: "numeric", ...attrs }),
  ];
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: (e) => {
        e.preventDefault();
        const f = form.elements;
        const body = { kind: f.kind.value, title: f.title.value.trim() };
        if (f.maxParticipants.value) body.maxParticipants = Number(f.maxParticipants.value);
        if (f.idleMinutes.value) body.idleTimeout = Math.round(Number(f.idleMinutes.value) * 60);
        if (f.maxHours.value) body.maxDuration = Math.round(Number(f.maxHours.value) * 3600);
        submitting(form, box, async () => {
          const room = await api("POST", "/api/rooms", body);
          const id = await rooms.enter(rooms.codeOf(room.inviteUrl));
          rooms.loadMine();
          ctx.navigate("/r/" + encodeURIComponent(id), { replace: true });
        });
      },
    },
    h("h1", {}, "Open a room"),
    h("fieldset", {},
      h("legend", {}, "What kind of room?"),
      h("div", { class: "choices" },
        kind("chat", "Chat", "Messages only", true),
        kind("video", "Video", "Cameras and microphones", false),
        kind("both", "Both", "Video with a chat beside it", false),
      ),
    ),
    h("label", { for: "title" }, "Title", h("span", { class: "hint" }, " (what people see when they open the link)")),
    h("input", { id: "title", name: "title", required: true, maxlength: 100, autofocus: true, placeholder: "Tea at four" }),
    h("details", {},
      h("summary", {}, "Limits (optional)"),
      num("maxParticipants", "People at once", "(2–1000, default 50)", { min: 2, max: 1000 }),
      num("idleMinutes", "Close when empty for", "(minutes, default 5)", { min: 1, max: 1440 }),
      num("maxHours", "Close after at most", "(hours, default 8)", { min: 1, max: 168 }),
    ),
    box,
    h("div", { class: "row" }, h("button", { type: "submit" }, "Open the room")),
  );
  mount(ctx.main, h("div", { class: "narrow" }, form));
}

export function join(ctx, code) {
  title("Invitation");
  const card = h("div", { class: "card stack", "aria-live": "polite" }, h("h1", {}, "Opening the invitation…"));
  mount(ctx.main, h("div", { class: "narrow" }, card));
  const here = "/join/" + encodeURIComponent(code);
  const refused = (e) => {
    const closed = e.code === "room_closed" || e.code === "room_ended" || e.code === "room_not_found";
    mount(card,
      h("h1", {}, closed ? "This room was closed" : "This link does not open a room"),
      h("p", {}, e.message),
      h("a", { class: "button secondary", href: "/", "data-link": "" }, "Go to Rendezvous"),
    );
  };
  if (session.user) {
    // Logged in: straight into the room.
    rooms.enter(code).then(
      (id) => ctx.navigate("/r/" + encodeURIComponent(id), { replace: true }),
      refused,
    );
    return;
  }
  publicApi("GET", "/api/join/" + encodeURIComponent(code)).then((p) => {
    title(p.title);
    mount(card,
      h("p", { class: "muted" }, p.creatorName ? `${p.creatorName} invites you to` : "You are invited to"),
      h("h1", {}, p.title),
      h("p", {}, h("span", { class: "kind" }, KINDS[p.kind] || p.kind)),
      h("p", {}, "Log in or create an account to join. You come straight back here."),
      h("div", { class: "row" },
        h("a", { class: "button", href: "/register?next=" + encodeURIComponent(here), "data-link": "" }, "Create an account"),
        h("a", { class: "button secondary", href: "/login?next=" + encodeURIComponent(here), "data-link": "" }, "Log in"),
      ),
    );
  }, (e) => {
    // A limited link already used by others may still admit you if you were one of them.
    if (e.code === "invite_used_up") {
      mount(card,
        h("h1", {}, "Invitation"),
        h("p", {}, "This link may be used up. If you joined with it before, log in to come back."),
        h("a", { class: "button", href: "/login?next=" + encodeURIComponent(here), "data-link": "" }, "Log in"),
      );
    } else refused(e);
  });
}

export function notFound() {
  title("Not found");
  return h("div", { class: "narrow card" },
    h("h1", {}, "Nothing here"),
    h("p", {}, "This page does not exist."),
    h("a", { class: "button", href: "/", "data-link": "" }, "Go to Rendezvous"),
  );
}
