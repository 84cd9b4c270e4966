// The page's entry: routes (the URL always says where you are), the top bar, the
// sidebar of rooms you are in, and the unread count in the tab title.

import { h, mount } from "./lib/dom.js";
import { logout, onSession, restore, session } from "./lib/api.js";
import * as rooms from "./lib/rooms.js";
import * as pages from "./views/pages.js";
import { roomView } from "./views/room.js";

const main = document.getElementById("main");
const sidebar = document.getElementById("sidebar");
const topnav = document.getElementById("topnav");

/** [pattern, view, needs log-in]. A view is `(ctx, ...params) => cleanup?`. */
const ROUTES = [
  [/^\/$/, pages.welcome, false],
  [/^\/login$/, pages.login, false],
  [/^\/register$/, pages.register, false],
  [/^\/rooms$/, pages.myRooms, true],
  [/^\/rooms\/new$/, pages.newRoom, true],
  [/^\/join\/([^/]+)$/, pages.join, false],
  [/^\/r\/([^/]+)$/, roomView, true],
];

let cleanup = null;
let current = "";

/** Go to `path` (pushes history unless `replace`). */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else if (path !== location.pathname + location.search) history.pushState(null, "", path);
  render();
}

function render() {
  const path = location.pathname;
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  main.className = "";
  const route = ROUTES.find(([re]) => re.test(path));
  if (!route) {
    mount(main, pages.notFound());
    current = path;
    return;
  }
  const [re, view, needsLogin] = route;
  if (needsLogin && !session.user) {
    navigate("/login?next=" + encodeURIComponent(path + location.search), { replace: true });
    return;
  }
  const params = path.match(re).slice(1).map(decodeURIComponent);
  const ctx = { main, navigate, params: new URLSearchParams(location.search) };
  main.replaceChildren();
  cleanup = view(ctx, ...params);
  if (current !== path) {
    // A new page within the app: move focus for keyboard and screen-reader users.
    const first = current === "";
    current = path;
    if (first) return drawSidebar();
    // A form's first field if it asks for one, else the page's heading.
    const target = main.querySelector("[autofocus]") || main.querySelector("h1");
    if (target) {
      if (target.tagName === "H1") target.tabIndex = -1;
      target.focus({ preventScroll: true });
    }
  }
  drawSidebar();
}

function drawTopnav() {
  if (session.user) {
    mount(
      topnav,
      h("span", { class: "who" }, session.user.displayName),
      h("a", { class: "button secondary", href: "/rooms", "data-link": "" }, "My rooms"),
      h("a", { class: "button", href: "/rooms/new", "data-link": "" }, "New room"),
      h("button", {
        class: "secondary",
        type: "button",
        onclick: async () => {
          rooms.clear();
          await logout().catch(() => {});
          navigate("/");
        },
      }, "Log out"),
    );
  } else {
    mount(
      topnav,
      h("a", { class: "button secondary", href: "/login", "data-link": "" }, "Log in"),
      h("a", { class: "button", href: "/register", "data-link": "" }, "Register"),
    );
  }
}

function drawSidebar() {
  const mineIds = new Set(rooms.mine.map((r) => r.id));
  const list = [
    ...[...rooms.joined.values()].filter((r) => !r.conn.ended),
    ...rooms.mine.filter((r) => !rooms.joined.has(r.id)),
  ];
  sidebar.hidden = !session.user || list.length === 0;
  const here = location.pathname;
  mount(
    sidebar,
    h("h2", {}, "Your rooms"),
    h(
      "ul",
      {},
      list.map((r) => {
        const unread = r.conn ? r.conn.state.unread() : 0;
        const href = "/r/" + encodeURIComponent(r.id);
        return h(
          "li",
          {},
          h(
            "a",
            { href, "data-link": "", "aria-current": here === href ? "page" : null },
            h("span", { class: "name" }, r.title),
            mineIds.has(r.id) ? h("span", { class: "kind" }, "host") : null,
            unread ? h("span", { class: "badge", "aria-label": `${unread} unread` }, String(unread)) : null,
          ),
        );
      }),
    ),
  );
  const total = rooms.totalUnread();
  document.title = (total ? `(${total}) ` : "") + (document.body.dataset.title || "Rendezvous");
}

// Same-origin links move within the page instead of reloading it.
document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-link]");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute("href"));
});
addEventListener("popstate", render);
// Every event of every room the tab is in reports a change: redraw the sidebar and
// the title once per burst, not once per event. A timer, not an animation frame:
// a hidden tab gets no frames, and its title is where the unread count shows.
let sidebarQueued = false;
rooms.changes.addEventListener("change", () => {
  if (sidebarQueued) return;
  sidebarQueued = true;
  setTimeout(() => {
    sidebarQueued = false;
    drawSidebar();
  }, 0);
});
onSession((user) => {
  drawTopnav();
  if (!user) {
    rooms.clear();
    // Logged out (here or in another tab): pages that need a log-in go away.
    const route = ROUTES.find(([re]) => re.test(location.pathname));
    if (route?.[2]) navigate("/login", { replace: true });
  }
});

await restore();
drawTopnav();
if (session.user) {
  rooms.loadMine();
  rooms.resumeAll();
}
render();
