// The room's side panel: who is here (connected or reconnecting), the host's
// moderation (mute, remove, lock) and the host's invite links (copy, new, revoke).

import { avatar, copy, h, mount, toast } from "../lib/dom.js";
import { api } from "../lib/api.js";
import { confirmButton } from "./pages.js";

/** Draw the people list into `el` from the room's state. */
export function drawPeople(el, conn) {
  const s = conn.state;
  const me = s.you;
  const mod = s.amModerator();
  const people = [...s.people.values()].sort((a, b) => (a.id === me ? -1 : b.id === me ? 1 : a.name.localeCompare(b.name)));
  // A removal being confirmed survives the redraw (someone joining meanwhile).
  const asking = el.querySelector(".confirm-remove");
  const focused = asking?.contains(document.activeElement) ? document.activeElement : null;
  mount(
    el,
    h("h2", { id: "people-head" }, `In the room (${people.length})`),
    h(
      "ul",
      { "aria-labelledby": "people-head" },
      people.map((p) =>
        h(
          "li",
          { class: "person", "data-connected": String(p.connected), "data-person": p.id },
          avatar(p.id, p.name, true),
          h("span", { class: "name" }, p.name, p.id === me ? " (you)" : "", p.moderator ? h("span", { class: "hint" }, " · host") : null),
          h("span", { class: "state" }, !p.connected ? "reconnecting…" : p.muted ? "muted" : ""),
          mod && p.id !== me
            ? h("span", { class: "row" },
                h("button", {
                  type: "button",
                  class: "ghost",
                  "aria-label": `${p.muted ? "Unmute" : "Mute"} ${p.name}`,
                  onclick: () => conn.send({ type: "mute", participantId: p.id, muted: !p.muted }),
                }, p.muted ? "Unmute" : "Mute"),
                h("button", {
                  type: "button",
                  class: "ghost",
                  "aria-label": `Remove ${p.name}`,
                  onclick: (e) => askRemove(e.currentTarget.closest(".person"), conn, p),
                }, "Remove"),
              )
            : null,
        ),
      ),
    ),
    mod
      ? h("label", { class: "choice" },
          h("input", {
            type: "checkbox",
            checked: s.locked,
            onchange: (e) => conn.send({ type: "lock", locked: e.target.checked }),
          }),
          h("span", {}, h("strong", {}, "Lock the room"), h("span", { class: "hint" }, "Nobody new can come in")),
        )
      : s.locked
        ? h("p", { class: "hint" }, "The room is locked.")
        : null,
  );
  const row = asking && el.querySelector(`.person[data-person="${CSS.escape(asking.dataset.person)}"]`);
  if (row && mod) {
    row.after(asking);
    focused?.focus();
  }
}

/**
 * Removing someone is final (they cannot come back), so it asks first, in place,
 * with room for a reason they will be shown.
 */
function askRemove(row, conn, p) {
  const reason = h("input", { "aria-label": `Why remove ${p.name}? (they will see it)`, placeholder: "Reason (optional, shown to them)", maxlength: 200 });
  const form = h(
    "form",
    {
      class: "confirm-remove stack",
      "data-person": p.id,
      onsubmit: (e) => {
        e.preventDefault();
        conn.send({ type: "kick", participantId: p.id, reason: reason.value.trim() || undefined });
        form.remove();
      },
    },
    h("p", { class: "hint" }, `Remove ${p.name}? They cannot come back to this room.`),
    reason,
    h("div", { class: "row" },
      h("button", { type: "submit", class: "danger" }, `Remove ${p.name}`),
      h("button", { type: "button", class: "secondary", onclick: () => form.remove() }, "Cancel"),
    ),
  );
  row.querySelector(".confirm-remove")?.remove();
  row.after(form);
  reason.focus();
}

const EXPIRY = [
  ["", "Never expires"],
  ["3600", "Expires in 1 hour"],
  ["86400", "Expires in 1 day"],
  ["604800", "Expires in 7 days"],
];
const USES = [
  ["", "Any number of people"],
  ["1", "1 person"],
  ["5", "5 people"],
  ["25", "25 people"],
];

/** The host's invite links; `el` is redrawn after each change. */
export async function drawInvites(el, roomId) {
  const path = `/api/rooms/${encodeURIComponent(roomId)}`;
  let room;
  try {
    room = await api("GET", path);
  } catch (e) {
    mount(el, h("p", { class: "error" }, e.message));
    return;
  }
  const redraw = () => drawInvites(el, roomId);
  const live = room.invites.filter((i) => !i.revoked);
  const form = h(
    "form",
    {
      class: "stack",
      onsubmit: async (e) => {
        e.preventDefault();
        const body = {};
        if (form.elements.expiry.value) body.expiresIn = Number(form.elements.expiry.value);
        if (form.elements.uses.value) body.maxUses = Number(form.elements.uses.value);
        try {
          const inv = await api("POST", `${path}/invites`, body);
          await copy(inv.url);
          redraw();
        } catch (err) {
          toast(err.message);
        }
      },
    },
    h("label", { for: "inv-expiry", class: "sr-only" }, "Expiry of the new link"),
    h("select", { id: "inv-expiry", name: "expiry" }, EXPIRY.map(([v, t]) => h("option", { value: v }, t))),
    h("label", { for: "inv-uses", class: "sr-only" }, "Who may use the new link"),
    h("select", { id: "inv-uses", name: "uses" }, USES.map(([v, t]) => h("option", { value: v }, t))),
    h("button", { type: "submit", class: "secondary" }, "New link"),
  );
  mount(
    el,
    h("h2", {}, "Invite links"),
    live.length ? null : h("p", { class: "hint" }, "No live link: make one below."),
    live.map((i) =>
      h("div", { class: "invite", "data-invite": i.id },
        h("label", { class: "sr-only", for: "inv-" + i.id }, "Invite link"),
        h("input", { id: "inv-" + i.id, readonly: true, value: i.url, class: "invite-url", onfocus: (e) => e.target.select() }),
        h("div", { class: "meta" }, describe(i)),
        h("div", { class: "row" },
          h("button", { type: "button", class: "secondary", onclick: () => copy(i.url) }, "Copy"),
          confirmButton("Revoke", "Revoke it?", async () => {
            try {
              await api("DELETE", `${path}/invites/${encodeURIComponent(i.id)}`);
              toast("Link revoked");
              redraw();
            } catch (err) {
              toast(err.message);
            }
          }),
        ),
      ),
    ),
    form,
  );
}

function describe(i) {
  const parts = [];
  parts.push(i.maxUses ? `${i.uses} of ${i.maxUses} used` : i.uses ? `used by ${i.uses}` : "not used yet");
  if (i.expiresAt) parts.push("expires " + new Date(i.expiresAt).toLocaleString());
  return parts.join(" · ");
}
