// Compare (issue 29): pick 2–4 avatars of a project, then see them side by side — picture, name,
// persona, attributes — with a small chart of their use per day over a window (GET …/compare).
import { ATTRIBUTES, PERSONA_KEYS, call, displayUrl, pretty, resignOnError, safe, state } from "./core.js";
import { number, t } from "./i18n.js";
import { errorText, h, label } from "./ui.js";

export const MIN = 2;
export const MAX = 4;
const WINDOWS = [7, 30, 90];
const DEFAULT_DAYS = 30;

/** "#/projects/{pid}/compare?avatars=a,b&days=30" */
export const COMPARE_ROUTE = /^#\/projects\/([\w-]+)\/compare\/?(?:\?(.*))?$/;
export const compareUrl = (projectId, ids, days = DEFAULT_DAYS) =>
  `#/projects/${projectId}/compare?avatars=${ids.map(encodeURIComponent).join(",")}&days=${days}`;

// ---- picking avatars on the project page ---------------------------------------------------------

/** The project page's selection mode: a toggle button for its toolbar and a bar that counts the
 * picks and opens the comparison. While it is on, every ready card carries a checkbox; at MAX picks
 * the others are disabled, so a fifth can never be chosen. Cards added later (more pages, new
 * images) get theirs as they arrive. */
export function compareSelection(view) {
  const picked = new Map();  // id → name, in the order picked
  const status = h("span", { id: "compare-status", role: "status" });
  const open = h("button", { type: "button", id: "compare-open", disabled: true,
    onclick: () => { location.hash = compareUrl(view.project.id, [...picked.keys()]); } }, t("compare.open"));
  const bar = h("div", { class: "compare-bar toolbar", id: "compare-bar", hidden: true, role: "region",
    "aria-label": t("compare.bar_label") }, status,
  h("div", { class: "row" }, open, h("button", { type: "button", class: "ghost", id: "compare-cancel", onclick: () => stop() }, t("action.cancel"))));
  const button = h("button", { type: "button", class: "ghost", id: "compare-mode", "aria-pressed": "false", onclick: () => (on() ? stop() : start()) },
    t("compare.mode"));
  const watcher = new MutationObserver(() => decorate());
  const on = () => button.getAttribute("aria-pressed") === "true";

  function start() {
    button.setAttribute("aria-pressed", "true");
    view.grid.classList.add("selecting");
    bar.hidden = false;
    decorate();
    watcher.observe(view.grid, { childList: true, subtree: true });
    update();
    view.grid.querySelector(".compare-pick input")?.focus();
  }

  function stop() {
    watcher.disconnect();
    button.setAttribute("aria-pressed", "false");
    view.grid.classList.remove("selecting");
    view.grid.querySelectorAll(".compare-pick").forEach((el) => el.remove());
    picked.clear();
    bar.hidden = true;
    button.focus();
  }

  function decorate() {
    for (const card of view.grid.querySelectorAll('.avatar-card[data-status="ready"]')) {
      const wrap = card.querySelector(".thumb-wrap");
      if (!wrap || wrap.querySelector(".compare-pick")) continue;
      const id = card.dataset.avatarId;
      const name = card.querySelector(".name .ellipsis")?.textContent || "";
      const box = h("input", { type: "checkbox", dataset: { avatarId: id }, checked: picked.has(id),
        onchange: () => { if (box.checked) picked.set(id, name); else picked.delete(id); update(); } });
      // The visible word is part of the name (WCAG 2.5.3); the avatar's name tells the boxes apart.
      wrap.append(h("label", { class: "compare-pick" }, box, h("span", {}, t("compare.pick")),
        h("span", { class: "visually-hidden" }, ` ${name}`)));
    }
    update();
  }

  function update() {
    // A pick whose card left the grid (the avatar was deleted meanwhile) is dropped.
    for (const id of [...picked.keys()]) {
      if (!view.grid.querySelector(`.avatar-card[data-avatar-id="${id}"]`)) picked.delete(id);
    }
    for (const box of view.grid.querySelectorAll(".compare-pick input")) box.disabled = !box.checked && picked.size >= MAX;
    open.disabled = picked.size < MIN || picked.size > MAX;
    status.textContent = picked.size >= MAX ? t("compare.status_full", { count: picked.size, max: MAX })
      : t("compare.status", { count: picked.size, min: MIN, max: MAX });
  }

  return { button, bar, stop };
}

// ---- the comparison -------------------------------------------------------------------------------

/** The compare view of "#/projects/{pid}/compare?avatars=…&days=…": `render` replaces the page. */
export async function renderCompare(render, projectId, query) {
  const params = new URLSearchParams(query || "");
  const ids = (params.get("avatars") || "").split(",").map((s) => s.trim()).filter(Boolean);
  let days = Number.parseInt(params.get("days"), 10) || DEFAULT_DAYS;
  const projectLink = h("a", { href: `#/projects/${projectId}`, id: "compare-project" },
    state.project?.id === projectId ? state.project.name : t("compare.back"));
  const windows = [...new Set([...WINDOWS, days])].sort((a, b) => a - b);
  const choose = h("select", { id: "compare-days" }, windows.map((d) => h("option", { value: String(d), selected: d === days },
    t("compare.window_days", { count: d }))));
  const body = h("div", { id: "compare-body", class: "stack", "aria-busy": "true" }, h("p", { class: "loading" }, t("app.loading")));
  render(
    h("nav", { class: "crumbs", "aria-label": t("nav.breadcrumb") }, h("a", { href: "#/" }, t("nav.all_projects")), " / ", projectLink),
    h("section", { id: "compare-view", class: "stack", "aria-labelledby": "compare-title" },
      h("div", { class: "project-head" },
        h("div", { class: "project-title" }, h("h1", { id: "compare-title" }, t("compare.title")),
          h("p", { class: "meta" }, t("compare.lead"))),
        h("label", { class: "compare-window" }, h("span", {}, t("compare.window")), choose)),
      body));
  if (state.project?.id !== projectId) {
    state.api.get(`/projects/${projectId}`).then((p) => { projectLink.textContent = p.name; }).catch(() => {});
  }
  choose.addEventListener("change", safe(async () => {
    days = Number(choose.value);
    // The address keeps the window (a reload, a shared link) without a new history entry per change.
    history.replaceState(history.state, "", compareUrl(projectId, ids, days));
    await load();
  }));

  async function load() {
    body.setAttribute("aria-busy", "true");
    let data;
    try {
      data = await state.api.get(`/projects/${projectId}/compare?avatars=${encodeURIComponent(ids.join(","))}&days=${days}`);
    } catch (error) {
      if (error.status === 401) return call(Promise.reject(error)).catch(() => {});  // signs out, says why
      body.replaceChildren(h("div", { class: "empty-state", id: "compare-error", role: "alert" },
        h("h2", {}, error.status === 404 ? t("compare.not_found") : t("compare.cannot")),
        h("p", {}, refusal(error)),
        h("a", { href: `#/projects/${projectId}`, class: "button" }, t("compare.pick_again"))));
      body.removeAttribute("aria-busy");
      return;
    }
    body.replaceChildren(...comparison(projectId, data));
    body.removeAttribute("aria-busy");
  }
  await load();
}

/** Why the API refused the comparison, in the page's words: a 400 is about the address (the avatars
 * named, or the window), anything else is said as everywhere else. */
function refusal(error) {
  if (error.status !== 400) return errorText(error);
  const days = (error.details || []).some((d) => String(d.field || "").startsWith("days"));
  return days ? t("compare.invalid_days", { max: 90 }) : t("compare.invalid_avatars", { min: MIN, max: MAX });
}

function comparison(projectId, data) {
  const peak = Math.max(1, ...data.avatars.flatMap((a) => a.daily));  // one scale for every chart
  const columns = h("div", { class: "compare-grid", id: "compare-grid", dataset: { count: data.avatars.length } },
    data.avatars.map((entry) => column(projectId, entry, data, peak)));
  return [columns, numbersTable(data)];
}

function column(projectId, entry, data, peak) {
  const a = entry.avatar;
  const picture = displayUrl(a) || a.thumbnailUrl;
  const attributes = Object.keys(ATTRIBUTES).filter((k) => a[k]);
  const persona = PERSONA_KEYS.filter((k) => a[k] !== null && a[k] !== undefined && a[k] !== "" && !(Array.isArray(a[k]) && !a[k].length));
  return h("article", { class: "card compare-col", dataset: { avatarId: a.id }, "aria-labelledby": `compare-name-${a.id}` },
    picture ? resignOnError(h("img", { class: "compare-picture", src: picture, alt: t("avatar.picture_alt", { name: a.name }),
      width: 300, height: 300, decoding: "async" }), a.id, (fresh) => displayUrl(fresh) || fresh.thumbnailUrl)
      : h("div", { class: "compare-picture placeholder" }, t("card.processing")),
    h("div", { class: "body stack" },
      h("h2", { class: "name", id: `compare-name-${a.id}` }, h("a", { href: `#/projects/${projectId}/avatars/${a.id}` }, a.name)),
      h("p", { class: "compare-total", dataset: { total: entry.total } },
        h("b", {}, number(entry.total)), " ", t("compare.uses_in_window", { count: entry.total, days: data.days })),
      chart(entry, data, peak),
      entry.byApp.length
        ? h("ul", { class: "usage-summary compare-apps", "aria-label": t("compare.by_app") },
          entry.byApp.map((app) => h("li", { dataset: { appId: app.appId } }, h("span", {}, app.appName),
            h("span", { class: "count" }, number(app.total)))))
        : h("p", { class: "meta" }, t("compare.no_use")),
      persona.length ? h("dl", { class: "facts compare-persona", "aria-label": t("form.persona") },
        persona.map((k) => h("div", { class: "fact" }, h("dt", {}, label(k)),
          h("dd", {}, Array.isArray(a[k]) ? a[k].join(", ") : String(a[k]))))) : null,
      attributes.length ? h("dl", { class: "facts compare-attributes", "aria-label": t("form.look") },
        attributes.map((k) => h("div", { class: "fact" }, h("dt", {}, label(k)), h("dd", {}, pretty(a[k])))))
        : h("p", { class: "meta" }, t("compare.no_attributes"))));
}

const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}, ...children) => {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  el.append(...children);
  return el;
};

/** Uses per day as bars (inline SVG, no script of anyone else's): one scale for all the avatars, so
 * the heights compare. Read out as one image whose name says the total and the busiest day; the
 * numbers themselves are in the table below the columns. */
function chart(entry, data, peak) {
  const width = 300;
  const height = 80;
  const step = width / data.days;
  const gap = data.days <= 31 ? Math.min(2, step / 4) : 0;
  let busiest = 0;
  entry.daily.forEach((n, i) => { if (n > entry.daily[busiest]) busiest = i; });
  const name = entry.total
    ? t("compare.chart_label", { name: entry.avatar.name, count: entry.total, days: data.days,
      peak: entry.daily[busiest], day: dayWords(data.dates[busiest]) })
    : t("compare.chart_empty", { name: entry.avatar.name, days: data.days });
  const bars = entry.daily.map((n, i) => {
    const tall = n ? Math.max(2, (n / peak) * (height - 4)) : 0;
    return svg("rect", { class: "chart-bar", x: String(i * step + gap / 2), y: String(height - tall), width: String(Math.max(0.5, step - gap)),
      height: String(tall), "data-day": data.dates[i], "data-count": String(n) },
    svg("title", {}, `${dayWords(data.dates[i])}: ${t("count.uses", { count: n })}`));
  });
  const base = svg("line", { class: "chart-base", x1: "0", y1: String(height - 0.5), x2: String(width), y2: String(height - 0.5) });
  return h("figure", { class: "compare-chart" },
    svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img", "aria-label": name, class: "chart-svg" },
      base, ...bars),
    h("figcaption", { class: "meta chart-axis" }, h("span", {}, dayWords(data.dates[0])), h("span", {}, dayWords(data.dates[data.dates.length - 1]))));
}

/** "7 Dec" in the page's language, read as the UTC day it is. */
const dayWords = (day) => new Intl.DateTimeFormat(document.documentElement.lang || "en",
  { day: "numeric", month: "short", timeZone: "UTC" }).format(new Date(`${day}T00:00:00Z`));

/** Every number of the charts as a table (the accessible way to read them, and a copyable one). */
function numbersTable(data) {
  const rows = data.dates.map((day, i) => h("tr", { dataset: { day } }, h("th", { scope: "row" }, dayWords(day)),
    data.avatars.map((entry) => h("td", { dataset: { avatarId: entry.avatar.id } }, number(entry.daily[i])))));
  return h("details", { class: "compare-numbers", id: "compare-numbers" },
    h("summary", {}, t("compare.table_show")),
    h("div", { class: "table-scroll" },
      h("table", { id: "compare-table" },
        h("caption", {}, t("compare.table_caption", { count: data.days })),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("compare.day")),
          data.avatars.map((entry) => h("th", { scope: "col" }, entry.avatar.name)))),
        h("tbody", {}, rows),
        h("tfoot", {}, h("tr", {}, h("th", { scope: "row" }, t("compare.total")),
          data.avatars.map((entry) => h("td", { dataset: { avatarId: entry.avatar.id } }, number(entry.total))))))));
}
