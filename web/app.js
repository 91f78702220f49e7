// Avatar Creator page: sign-in, projects, one project (upload, generation jobs, avatars), stats.
import { Api, ApiError, NetworkError, uploadToS3 } from "./api.js";
import { showAvatar } from "./avatar.js";
import { COMPARE_ROUTE, compareSelection, renderCompare } from "./compare.js";
import { ATTRIBUTES, call, drawnOffline, pretty, resignOnError, safe, select, state, urlLifetime } from "./core.js";
import { showGenerate } from "./generate.js";
import { LANGUAGES, lang, number, setLang, t, translateStatic } from "./i18n.js";
import { personAsked, personOptIn } from "./suggestions.js";
import { confirmDialog, errorText, h, historySettled, openDialog, rich, showError, toast, when } from "./ui.js";
import { renderWebhooks } from "./webhooks.js";
import { accountLine, installAccount } from "./account.js";
import { projectExports } from "./export.js";
import { can, membersButton, roleLine, sharedProjects } from "./members.js";

const TOKEN_KEY = "avatar-creator.token";
const USER_KEY = "avatar-creator.user";
const MAX_BYTES = 10 * 1024 * 1024;
const TYPES = ["image/jpeg", "image/png", "image/webp"];
const PAGE_SIZE = 24;
const THUMB = 300;  // thumbnails are 300×300: set on the <img> so lazy loading never shifts the layout

const main = () => document.getElementById("main");
/** Replace the page content; null/false entries (optional parts) are skipped, not printed. */
const render = (...nodes) => {
  main().classList.remove("with-panel");  // a new view has no generate panel
  main().replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false));
};
const count = (key, n) => t(key, { count: n });
const touch = () => matchMedia("(hover: none) and (pointer: coarse)").matches;

// ---- boot and sign-in --------------------------------------------------------------------------

async function boot() {
  try {
    state.config = await (await fetch("config.json")).json();
  } catch {
    state.config = { apiUrl: location.origin, stage: "unknown", devLogin: false };
  }
  state.onSignOut = signOut;
  document.getElementById("signout-button").addEventListener("click", signOut);
  document.getElementById("stats-button").addEventListener("click", safe(showStats));
  installAccount();
  languageSwitcher();
  window.addEventListener("hashchange", () => route());
  // The skip link must not touch the hash: the hash is the route.
  document.querySelector(".skip").addEventListener("click", (event) => { event.preventDefault(); main().focus(); });
  // Last resort: whatever slipped past a handler is said, never left as an uncaught error.
  window.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    if (!event.reason?.shown) showError(errorText(event.reason));
  });
  document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && state.poll?.());
  pageDrop();
  loadHealth();
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) useToken(token, localStorage.getItem(USER_KEY));
  route();
}

/** On a project, the whole page is a drop target: photos dropped anywhere are uploaded to it, and
 * while files are dragged over the page a banner says so. Elsewhere a drop does nothing (and the
 * browser does not open the file in place of the page). */
function pageDrop() {
  const here = () => state.view?.grid?.isConnected && state.view.upload ? state.view : null;  // a viewer may not upload
  const dragging = (on) => {
    document.body.classList.toggle("dragging", on);
    if (on) document.body.dataset.dropText = t("upload.drop_anywhere");
  };
  let depth = 0;  // dragenter/dragleave fire for every child crossed: count them
  document.addEventListener("dragenter", (e) => { if (here() && e.dataTransfer?.types.includes("Files")) { depth += 1; dragging(true); } });
  document.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) dragging(false); });
  document.addEventListener("dragover", (e) => { if (e.dataTransfer?.types.includes("Files")) e.preventDefault(); });
  document.addEventListener("drop", (e) => {
    if (!e.dataTransfer?.files.length) return;
    e.preventDefault();
    depth = 0;
    dragging(false);
    here()?.upload([...e.dataTransfer.files]);
  });
}

/** The language switcher in the header: the choice is remembered, and the page is drawn again in it. */
function languageSwitcher() {
  translateStatic();
  const picker = document.getElementById("language");
  picker.replaceChildren(...LANGUAGES.map(([code, name]) => h("option", { value: code, lang: code, selected: code === lang() }, name)));
  picker.addEventListener("change", () => {
    setLang(picker.value);
    if (state.user) document.getElementById("who").textContent = state.user;
    route({ redraw: true });
  });
}

async function loadHealth() {
  try {
    const response = await fetch(`${state.config.apiUrl.replace(/\/$/, "")}/api/apps/avatar-creator/health`);
    state.health = await response.json();
  } catch { state.health = null; }
}

function useToken(token, user) {
  state.api = new Api(state.config.apiUrl, token, { language: lang });
  state.user = user || userFromToken(token);
  localStorage.setItem(TOKEN_KEY, token);
  localStorage.setItem(USER_KEY, state.user);
  document.getElementById("top-actions").hidden = false;
  document.getElementById("who").textContent = state.user;
}

function userFromToken(token) {
  try { return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub || "you"; } catch { return "you"; }
}

function signOut() {
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(USER_KEY);
  state.api = null;
  state.project = null;
  document.getElementById("top-actions").hidden = true;
  document.getElementById("dialog").open && document.getElementById("dialog").close();
  // After the closed dialog's history entry is gone, or Back's traversal would undo the navigation.
  historySettled().then(() => {
    if (location.hash && location.hash !== "#/") location.hash = "#/";
    route();
  });
}

function renderSignIn() {
  const userInput = h("input", { id: "dev-user", value: "alice", autocomplete: "username", required: true,
    maxlength: 64, "aria-describedby": "dev-help" });
  const tokenInput = h("textarea", { id: "paste-token", rows: 3, placeholder: "eyJhbGciOi…", required: true,
    spellcheck: "false", autocomplete: "off", "aria-describedby": "token-help token-error" });
  const devError = h("p", { class: "form-error", id: "dev-error", role: "alert", hidden: true });
  const tokenError = h("p", { class: "form-error", id: "token-error", role: "alert", hidden: true });
  const say = (el, text) => { el.textContent = text; el.hidden = !text; };
  const dev = state.config.devLogin ? h("form", { class: "panel stack", "aria-labelledby": "dev-title", onsubmit: async (event) => {
    event.preventDefault();
    say(devError, "");
    try {
      let response;
      try {
        response = await fetch("_local/token", { method: "POST", headers: { "Content-Type": "application/json", "Accept-Language": lang() },
          body: JSON.stringify({ userId: userInput.value.trim() }) });
      } catch { throw new NetworkError(); }
      const payload = await response.json().catch(() => ({}));
      if (!response.ok) throw new ApiError(response.status, payload.error);
      useToken(payload.token, payload.userId);
      route();
    } catch (error) { say(devError, errorText(error)); }
  } },
  h("h2", { id: "dev-title" }, t("signin.dev_title")),
  h("p", { class: "meta", id: "dev-help" }, rich("signin.dev_help", { cmd: h("code", {}, "make run") })),
  h("label", {}, h("span", {}, t("signin.user_id")), userInput), devError,
  h("button", { type: "submit", id: "dev-signin" }, t("signin.submit"))) : h("div", { class: "panel stack" },
    h("h2", {}, t("signin.dev_title")),
    h("p", { class: "meta" }, rich("signin.dev_off", { cmd: h("code", {}, "make run") })));
  const paste = h("form", { class: "panel stack", "aria-labelledby": "token-title", onsubmit: async (event) => {
    event.preventDefault();
    say(tokenError, "");
    const token = tokenInput.value.trim().replace(/^Bearer\s+/i, "");
    if (token.split(".").length !== 3) return say(tokenError, t("signin.token_shape"));
    // Checked before it is kept: a bad token is said here, not later as an expired session.
    try {
      await new Api(state.config.apiUrl, token, { language: lang }).get("/projects?limit=1");
    } catch (error) {
      // The API's reason ("Missing or invalid bearer token") is for developers: say what to do instead.
      return say(tokenError, error.status === 401 ? t("signin.token_invalid") : errorText(error));
    }
    useToken(token);
    route();
  } },
  h("h2", { id: "token-title" }, t("signin.token_title")),
  h("p", { class: "meta", id: "token-help" }, rich("signin.token_help", { cmd: h("code", {}, "make token USER=alice") })),
  h("label", {}, h("span", {}, t("signin.token_label")), tokenInput), tokenError,
  h("button", { type: "submit", class: "secondary", id: "use-token" }, t("signin.use_token")));
  render(h("section", { class: "signin" },
    h("div", { class: "hero" }, h("h1", {}, t("signin.title")),
      h("p", { class: "lead" }, t("signin.lead"))),
    h("div", { class: "signin-ways" }, dev, paste)));
}

/** "#/projects/{pid}", "#/projects/{pid}/avatars/{aid}" (the lightbox) or "…/developer"; compare.js has
 * "#/projects/{pid}/compare?avatars=…". */
const PROJECT_ROUTE = /^#\/projects\/([\w-]+)(?:\/avatars\/([\w-]+)(\/developer)?)?\/?$/;

function route({ redraw = false } = {}) {
  const match = PROJECT_ROUTE.exec(location.hash);
  // The project on screen stays as it is when only the lightbox opens or closes (Back, Forward, a link).
  if (match && !redraw && state.api && state.view?.project.id === match[1] && state.view.grid.isConnected) {
    openRouted(state.view, match);
    return Promise.resolve();
  }
  state.pollId = (state.pollId || 0) + 1;  // any running poll loop sees it is stale and stops
  state.poll = null;
  if (!state.api) { state.project = null; return renderSignIn(); }
  const webhooks = /^#\/webhooks\/?$/.test(location.hash);
  const link = document.getElementById("webhooks-link");
  if (webhooks) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  if (webhooks) state.project = null;
  const comparing = COMPARE_ROUTE.exec(location.hash);
  const done = comparing ? renderCompare(render, comparing[1], comparing[2])
    : match ? renderProject(match[1]).then((view) => view && openRouted(view, match))
      : webhooks ? renderWebhooks() : renderProjects();
  done.catch((error) => { if (!error?.shown) showError(errorText(error)); });
  return done;
}

/** The lightbox follows the address: an avatar's address opens it (a reload, a shared link, Forward),
 * the project's closes it. Opened from an address, the project's address goes under it first, so
 * Back closes the lightbox and stays on the project. */
function openRouted(view, [, projectId, avatarId, developer]) {
  const dialog = document.getElementById("dialog");
  if (!avatarId) {
    if (dialog.open && dialog.dataset.kind === "avatar") dialog.close();
    return;
  }
  if (dialog.open && dialog.dataset.avatarId === avatarId) return;
  // An open dialog takes the avatar in place (its history entry stays); otherwise one is pushed.
  if (!dialog.open) history.replaceState(history.state, "", `#/projects/${projectId}`);
  safe(() => showAvatar(view, { id: avatarId }, { developer: Boolean(developer) }))();
}

// ---- projects -----------------------------------------------------------------------------------

async function renderProjects() {
  state.project = null;
  render(h("p", { class: "loading" }, t("projects.loading")));
  const grid = h("div", { class: "grid projects", id: "project-grid" });
  const name = h("input", { id: "new-project-name", placeholder: t("projects.name_placeholder"), maxlength: 100, required: true });
  const description = h("input", { id: "new-project-description", placeholder: t("projects.description_placeholder"), maxlength: 1000 });
  const form = h("form", { class: "panel toolbar new-project", onsubmit: safe(async (event) => {
    event.preventDefault();
    const project = await call(state.api.post("/projects", { name: name.value.trim(), description: description.value.trim() }));
    toast(t("projects.created", { name: project.name }), "ok");
    location.hash = `#/projects/${project.id}`;
  }) },
  h("label", {}, h("span", {}, t("projects.new")), name), h("label", {}, h("span", {}, t("field.description")), description),
  h("button", { type: "submit", id: "create-project" }, t("projects.create")));
  let cursor = null;
  // A card's faces are asked for once it nears the screen (one small list call per card, at most 4 images).
  const onScreen = new IntersectionObserver((entries) => {
    for (const entry of entries.filter((e) => e.isIntersecting)) { onScreen.unobserve(entry.target); fillMosaic(entry.target); }
  }, { rootMargin: "100px" });
  const more = h("button", { type: "button", class: "ghost", hidden: true, onclick: safe(() => load()) }, t("action.load_more"));
  const shared = sharedProjects(projectCard, (mosaic) => onScreen.observe(mosaic));
  render(h("div", { class: "page-head" }, h("h1", {}, t("projects.title")),
    h("p", { class: "lead" }, t("projects.lead")), accountLine()),
  form, grid, more, shared.section);
  async function load() {
    const page = await call(state.api.get(`/projects?limit=24${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`));
    if (!cursor && !page.items.length) {
      grid.replaceChildren(h("div", { class: "empty-state", id: "no-projects" },
        h("div", { class: "empty-art", "aria-hidden": "true" }, "🗂️"),
        h("h2", {}, t("projects.empty_title")),
        h("p", {}, t("projects.empty_text")),
        h("button", { type: "button", onclick: () => name.focus() }, t("projects.empty_action"))));
    }
    for (const project of page.items) {
      const card = projectCard(project);
      grid.append(card);
      const mosaic = card.querySelector(".mosaic[data-pending]");
      if (mosaic) onScreen.observe(mosaic);
    }
    cursor = page.nextCursor;
    more.hidden = !cursor;
  }
  await Promise.all([load(), shared.load()]);
}

const MOSAIC = 4;  // faces on a project card, newest first

function projectCard(project) {
  const initials = project.name.trim().split(/\s+/).slice(0, 2).map((w) => [...w][0]).join("").toUpperCase();
  // The project's newest faces as a mosaic; a project without avatars keeps its monogram (a clean empty state).
  const mosaic = project.avatarCount > 0
    ? h("span", { class: "mosaic", "aria-hidden": "true", dataset: { projectId: project.id, pending: "1", initials: initials || "•" } })
    : h("span", { class: "mosaic monogram", "aria-hidden": "true" }, initials || "•");
  return h("a", { class: "card project-card", href: `#/projects/${project.id}`, dataset: { projectId: project.id } },
    mosaic,
    h("span", { class: "project-text" },
      h("strong", { class: "name" }, project.name),
      h("span", { class: "meta clamp" }, project.description || t("projects.no_description")),
      h("span", { class: "meta" }, t("projects.card_meta", { avatars: count("count.avatars", project.avatarCount), when: when(project.updatedAt) }))));
}

/** Up to four of the project's newest ready faces (thumbnails, lazily loaded and re-signed if stale). */
async function fillMosaic(el) {
  delete el.dataset.pending;
  let faces = [];
  try {
    const page = await state.api.get(`/projects/${el.dataset.projectId}/avatars?limit=${2 * MOSAIC}`);
    faces = page.items.filter((a) => a.status === "ready" && a.thumbnailUrl).slice(0, MOSAIC);
  } catch { /* offline or gone: the monogram stays */ }
  if (!faces.length) { el.classList.add("monogram"); el.textContent = el.dataset.initials; return; }
  el.dataset.count = String(faces.length);
  el.replaceChildren(...faces.map((a) => resignOnError(h("img", { src: a.thumbnailUrl, alt: "", width: 150, height: 150,
    decoding: "async", dataset: { avatarId: a.id } }), a.id, (fresh) => fresh.thumbnailUrl)));
}

// ---- one project --------------------------------------------------------------------------------

async function renderProject(projectId) {
  render(h("p", { class: "loading" }, t("project.loading")));
  let project;
  try { project = await call(state.api.get(`/projects/${projectId}`), { quiet404: true }); } catch (error) {
    render(h("div", { class: "empty-state" }, h("h2", {}, error.status === 404 ? t("project.not_found") :
      t("project.load_failed")), h("a", { href: "#/", class: "button" }, t("nav.all_projects"))));
    return null;
  }
  state.project = project;
  const title = h("h1", { id: "project-title" }, project.name);
  const count = h("span", { id: "avatar-count" });
  const grid = h("div", { class: "grid avatars", id: "avatar-grid" });
  const rejected = h("div", { class: "grid avatars", id: "rejected-grid" });
  const rejectedBox = h("section", { class: "rejected-box", id: "rejected", hidden: true, "aria-labelledby": "rejected-title" },
    h("h2", { id: "rejected-title" }, t("rejected.title")),
    h("p", { class: "meta" }, t("rejected.help")), rejected);
  const uploads = h("div", { class: "uploads", id: "uploads", "aria-live": "polite" });
  const jobs = h("div", { class: "jobs", id: "jobs" });
  const view = { project, grid, rejected, rejectedBox, uploads, jobs, count, title, drop: null };
  // The dialogs (avatar.js, generate.js) update this page's cards and jobs through the view, not by
  // importing this module: the page imports them, so importing it back would make a cycle.
  view.upsertCard = (avatar, options) => upsertCard(view, avatar, options);
  view.renderJob = (job) => renderJob(view, job);
  view.deleteAvatar = (avatar) => deleteAvatar(view, avatar);
  state.view = view;
  const fileInput = h("input", { type: "file", id: "file-input", accept: TYPES.join(","), multiple: true, hidden: true,
    onchange: () => { uploadFiles(view, [...fileInput.files]); fileInput.value = ""; } });
  // Issue 30: what the caller's role allows is all the page offers (the API still decides).
  const editor = can(project, "editor"), owner = can(project, "owner");
  view.chooseFiles = () => fileInput.click();
  view.upload = editor ? (files) => uploadFiles(view, files) : null;
  // Named by its content, so the name holds every word it shows (WCAG 2.5.3 Label in Name: a voice
  // user says what they see; an aria-label with other words failed it); the emoji is decoration.
  const drop = h("div", { class: "dropzone", id: "dropzone", tabindex: 0, role: "button",
    onclick: () => fileInput.click(), onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); fileInput.click(); } },
    // Drops anywhere on the page are taken by the page-wide handler (pageDrop).
    ondragover: () => drop.classList.add("over"),
    ondragleave: () => drop.classList.remove("over"),
    ondrop: () => drop.classList.remove("over") },
  h("strong", {}, h("span", { "aria-hidden": "true" }, "📷 "),
    h("span", { id: "dropzone-label" }, touch() ? t("upload.tap") : t("upload.drop"))),
  h("span", { class: "meta", id: "dropzone-help" }, t("upload.help")), fileInput);

  const search = h("input", { id: "search", type: "search", placeholder: t("filter.search_placeholder") });
  const filters = {
    sourceType: select("filter-source", [["", t("filter.any_source")], ["uploaded", t("source.uploaded")], ["text_to_image", t("source.text_to_image")], ["preset", t("source.preset")], ["image_to_image", t("source.image_to_image")]]),
    gender: select("filter-gender", [["", t("filter.any_gender")], ...ATTRIBUTES.gender.map((g) => [g, pretty(g)])]),
    style: select("filter-style", [["", t("filter.any_style")], ...ATTRIBUTES.style.map((s) => [s, pretty(s)])]),
  };
  const list = avatarList(view);
  view.list = list;
  let debounce;
  const query = () => {
    const params = new URLSearchParams();
    if (search.value.trim()) params.set("q", search.value.trim());
    for (const [key, el] of Object.entries(filters)) if (el.value) params.set(key, el.value);
    return params;
  };
  view.reload = () => list.reset(query());
  view.clearFilters = () => {
    search.value = "";
    Object.values(filters).forEach((el) => { el.value = ""; });
    search.focus();
    return view.reload();
  };
  search.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(safe(view.reload), 250); });
  Object.values(filters).forEach((s) => s.addEventListener("change", safe(view.reload)));
  showCount(view);
  const exports = projectExports(project);
  const picking = compareSelection(view);  // compare.js: pick 2–4 avatars, then open the compare view

  render(
    h("nav", { class: "crumbs", "aria-label": t("nav.breadcrumb") }, h("a", { href: "#/" }, t("nav.all_projects"))),
    h("div", { class: "project-head" },
      h("div", { class: "project-title" }, title, h("p", { class: "meta" }, count,
        project.description ? ` · ${project.description}` : ""), roleLine(project)),
      h("div", { class: "row actions" },
        editor ? h("button", { type: "button", id: "generate-button", onclick: safe(() => showGenerate(view)) }, t("action.generate")) : null,
        editor ? h("button", { type: "button", class: "secondary", id: "upload-button", onclick: () => fileInput.click() }, t("upload.button")) : null,
        exports.button,
        picking.button,
        membersButton(project),
        owner ? h("button", { type: "button", class: "ghost", id: "rename-project", onclick: safe(() => renameProject(view)) }, t("action.rename")) : null,
        owner ? h("button", { type: "button", class: "ghost", id: "delete-project", onclick: safe(() => deleteProject(project)) }, t("action.delete")) : null)),
    editor ? drop : null, editor ? personOptIn() : null, uploads, jobs, exports.section, rejectedBox,
    h("div", { class: "toolbar filters", role: "search" }, h("label", {}, h("span", {}, t("filter.search")), search),
      h("label", {}, h("span", {}, t("filter.source")), filters.sourceType),
      h("label", {}, h("span", {}, t("field.gender")), filters.gender), h("label", {}, h("span", {}, t("field.style")), filters.style)),
    picking.bar, grid, list.sentinel, list.more);
  view.drop = editor ? drop : null;
  list.start(project.avatars);
  startPolling(view, { withFailures: true });
  return view;
}

function showCount(view) {
  const n = view.project.avatarCount;
  // The faces come first: with avatars the drop zone gives its room to the grid (the whole page
  // takes drops, and "Upload photos" is in the toolbar); an empty project shows it.
  if (view.drop) view.drop.hidden = n > 0;
  const bad = view.rejected.querySelectorAll(".avatar-card").length;
  view.count.textContent = bad ? `${count("count.avatars", n)} · ${count("count.rejected", bad)}` : count("count.avatars", n);
  view.rejectedBox.hidden = !bad;
}

/** Counters come from the server after every action (upload, generation, delete), so they match the cards. */
async function refreshCounts(view) {
  try {
    const fresh = await state.api.get(`/projects/${view.project.id}`);
    Object.assign(view.project, { avatarCount: fresh.avatarCount, name: fresh.name, description: fresh.description });
  } catch { /* the next action refreshes it */ }
  showCount(view);
  emptyState(view);
}

function emptyState(view) {
  const hasCards = view.grid.querySelector(".avatar-card, .pending-tile");
  const current = view.grid.querySelector("#no-avatars");
  if (hasCards) { current?.remove(); return; }
  if (current) return;
  const filtered = view.list?.filtered();
  view.grid.append(filtered
    ? h("div", { class: "empty-state", id: "no-avatars" }, h("h2", {}, t("project.no_match")),
      h("p", {}, t("project.no_match_text")),
      h("button", { type: "button", class: "secondary", id: "clear-filters", onclick: safe(() => view.clearFilters()) }, t("filter.clear")))
    : !can(view.project, "editor") ? h("div", { class: "empty-state", id: "no-avatars" },
      h("h2", {}, t("project.empty_viewer_title")), h("p", {}, t("project.empty_viewer_text")))
    : h("div", { class: "empty-state", id: "no-avatars" },
      h("div", { class: "empty-art", "aria-hidden": "true" }, "🧑‍🎨"),
      h("h2", {}, t("project.empty_title")),
      h("p", {}, t("project.empty_text")),
      h("div", { class: "row center" },
        h("button", { type: "button", id: "empty-generate", onclick: safe(() => showGenerate(view)) }, t("project.empty_generate")),
        h("button", { type: "button", class: "secondary", id: "empty-upload", onclick: () => view.chooseFiles() }, t("upload.button")))));
}

function avatarList(view) {
  let cursor = null;
  let params = new URLSearchParams();
  let loading = false;
  let generation = 0;  // a reset makes any page still in flight stale
  const more = h("button", { type: "button", class: "ghost", id: "load-more", hidden: true, onclick: safe(() => load()) }, t("action.load_more"));
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  const nearBottom = () => sentinel.isConnected && sentinel.getBoundingClientRect().top < innerHeight + 400;
  async function fetchPage(withCursor) {
    const q = new URLSearchParams(params);
    q.set("limit", String(PAGE_SIZE));
    if (withCursor) q.set("cursor", withCursor);
    return call(state.api.get(`/projects/${view.project.id}/avatars?${q}`));
  }
  async function load() {
    if (loading || !cursor) return;
    loading = true;
    const mine = generation;
    try {
      const page = await fetchPage(cursor);
      if (mine === generation) show(page, false);
    } finally { loading = false; }
    // A filtered page can be short: keep filling while the end of the list is still on screen.
    if (mine === generation && cursor && nearBottom()) setTimeout(safe(load), 0);
  }
  // Presigned image URLs expire (IMAGE_URL_EXPIRY_SECONDS, 900 s by default). A page left open re-reads
  // the avatars it shows a little before that, and points the thumbnails at the new URLs, so they
  // never break; a thumbnail that fails anyway re-signs itself (resignOnError).
  let refreshTimer = null;
  let refreshAt = Infinity;
  /** Re-read before the first of these URLs expires (a timer already due sooner stays). */
  function scheduleRefresh(items) {
    const url = items.find((a) => a.thumbnailUrl)?.thumbnailUrl;
    if (!url) return;
    const lifetime = urlLifetime(url);
    const at = Date.now() + Math.max(5, lifetime - Math.max(5, Math.min(120, lifetime * 0.2))) * 1000;
    if (at >= refreshAt) return;
    clearTimeout(refreshTimer);
    refreshAt = at;
    refreshTimer = setTimeout(() => { refreshAt = Infinity; safe(refreshUrls)(); }, at - Date.now());
  }
  async function refreshUrls() {
    if (!view.grid.isConnected) return;
    const shown = view.grid.querySelectorAll(".avatar-card").length;
    const fresh = [];
    let next = null;
    do {  // the pages already on screen, in big pages (bounded: a huge grid is re-read 500 at most)
      const q = new URLSearchParams(params);
      q.set("limit", "100");
      if (next) q.set("cursor", next);
      const page = await state.api.get(`/projects/${view.project.id}/avatars?${q}`);
      fresh.push(...page.items);
      next = page.nextCursor;
    } while (next && fresh.length < Math.min(shown, 500));
    for (const avatar of fresh) {
      const img = view.grid.querySelector(`.avatar-card[data-avatar-id="${avatar.id}"] .thumb img`);
      if (img && avatar.thumbnailUrl) img.src = avatar.thumbnailUrl;
    }
    scheduleRefresh(fresh);
  }
  function show(page, replace) {
    // Rejected uploads are not avatars the filters look for: their box stays as it is under a filter.
    if (replace) { view.grid.replaceChildren(); if (!params.toString()) view.rejected.replaceChildren(); }
    for (const avatar of page.items) upsertCard(view, avatar);
    cursor = page.nextCursor;
    more.hidden = !cursor;
    showCount(view);
    emptyState(view);
    watchProcessing(view);
  }
  new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && safe(load)(), { rootMargin: "400px" }).observe(sentinel);
  return {
    more, sentinel, scheduleRefresh,
    filtered: () => params.toString() !== "",
    start(firstPage) {
      show(firstPage, true);
      if (cursor && nearBottom()) safe(load)();
    },
    async reset(newParams) {
      params = newParams;
      const mine = ++generation;
      view.grid.setAttribute("aria-busy", "true");
      try {
        const page = await fetchPage(null);
        if (mine === generation) show(page, true);
      } finally { view.grid.removeAttribute("aria-busy"); }
      if (mine === generation && cursor && nearBottom()) safe(load)();
    },
  };
}

/** Avatars still being checked (e.g. uploaded before a reload) turn into their final card by themselves. */
function watchProcessing(view) {
  const { grid } = view;
  if (grid.dataset.watching) return;
  grid.dataset.watching = "1";
  const deadline = Date.now() + 120_000;
  const tick = async () => {
    const pending = [...grid.querySelectorAll('.avatar-card[data-status="processing"], .avatar-card[data-status="uploading"]')].slice(0, 10);
    if (!pending.length || !grid.isConnected || Date.now() > deadline) { delete grid.dataset.watching; return; }
    for (const card of pending) {
      try {
        const avatar = await state.api.get(`/avatars/${card.dataset.avatarId}`);
        if (avatar.status === "ready" || avatar.status === "rejected") { upsertCard(view, avatar); refreshCounts(view); }
      } catch { /* deleted meanwhile, or offline: next tick */ }
    }
    setTimeout(tick, 2000);
  };
  setTimeout(tick, 2000);
}

/** Put an avatar's card where it belongs: rejected uploads in their own box, the rest in the grid. */
function upsertCard(view, avatar, { first = false } = {}) {
  // An answer that left before a delete and lands after it (a poll, a refresh of an edit) must not bring
  // the deleted avatar back.
  if (deletedAvatars.has(avatar.id)) return;
  const target = avatar.status === "rejected" ? view.rejected : view.grid;
  const card = avatarCard(view, avatar);
  const existing = document.querySelector(`.avatar-card[data-avatar-id="${avatar.id}"]`);
  const tile = avatar.generationId && avatar.imageIndex !== null && avatar.imageIndex !== undefined
    ? target.querySelector(`.pending-tile[data-generation-id="${avatar.generationId}"][data-image-index="${avatar.imageIndex}"]`) : null;
  if (existing && target.contains(existing)) existing.replaceWith(card);
  else if (tile && !existing) tile.replaceWith(card);  // the result lands where its tile was
  else {
    existing?.remove();
    if (first) target.prepend(card); else target.append(card);
  }
  if (target === view.grid) {
    regroup(view, avatar.generationId);
    view.grid.querySelector("#no-avatars")?.remove();
  }
  view.list?.scheduleRefresh([avatar]);
  showCount(view);
}

/** The images of one generation sit together, in the order they were asked for (image 1, 2, 3, 4), in
 * a batch under its prompt: their ids share a time part and differ by a hash, so the list's
 * newest-first order mixes them. The batch takes the place of its first member in the grid (the rest
 * of the grid stays newest first), its cards and its tiles (each result lands where its tile was).
 * Whether there is a batch depends only on the members on the page, so a reload draws the same:
 * two or more members, or one that is not the first image (the others were discarded). */
function regroup(view, generationId) {
  if (!generationId) return;
  const { grid } = view;
  const members = [...grid.querySelectorAll(`.avatar-card[data-generation-id="${generationId}"], .pending-tile[data-generation-id="${generationId}"]`)]
    .filter((m) => m.dataset.imageIndex !== undefined);
  let batch = grid.querySelector(`.batch[data-generation-id="${generationId}"]`);
  if (!(members.length > 1 || members.some((m) => Number(m.dataset.imageIndex) > 0))) {
    batch?.replaceWith(...members);  // a lone first image is a card like any other; an empty batch goes
    return;
  }
  if (!batch) {
    batch = h("div", { class: "batch", role: "group", dataset: { generationId } }, h("p", { class: "batch-caption" }));
    members[0].before(batch);
  }
  // Only what is out of place moves (a moved node loses the focus).
  let previous = batch.querySelector(".batch-caption");
  for (const member of members.sort((a, b) => Number(a.dataset.imageIndex) - Number(b.dataset.imageIndex))) {
    if (previous.nextElementSibling !== member) previous.after(member);
    previous = member;
  }
  const prompt = members.find((m) => m.dataset.prompt)?.dataset.prompt || "";
  const caption = batch.querySelector(".batch-caption");
  if (caption.dataset.prompt !== prompt) {
    caption.dataset.prompt = prompt;
    caption.textContent = prompt || t("batch.no_prompt");  // cut to one line by the style sheet; all of it in the tooltip
    caption.title = prompt;
    batch.setAttribute("aria-label", prompt ? t("batch.label", { prompt }) : t("batch.no_prompt"));
  }
}

// ---- keep, discard or vary a generated image ---------------------------------------------------

const KEPT_KEY = "avatar-creator.kept-avatars";
const kept = () => { try { return JSON.parse(localStorage.getItem(KEPT_KEY)) || []; } catch { return []; } };
function keep(id) {
  // Bounded like the dismissed jobs: the newest choices are the ones still on screen.
  localStorage.setItem(KEPT_KEY, JSON.stringify([id, ...kept().filter((k) => k !== id)].slice(0, 1000)));
}

/** On a generated picture not yet kept: Keep (the default: it only puts the choice away, for good on
 * this browser), Discard (deletes the avatar, after a confirmation) and Vary (two variations). Over
 * the picture on hover and keyboard focus, like the card's other actions. */
function choiceRow(view, avatar) {
  if (!avatar.generationId || avatar.status !== "ready" || kept().includes(avatar.id) || !can(view.project, "editor")) return null;
  const row = h("div", { class: "row choice", role: "group", "aria-label": t("choice.label", { name: avatar.name }) },
    h("button", { type: "button", class: "ghost small keep-avatar", "aria-label": t("choice.keep_named", { name: avatar.name }), onclick: () => {
      keep(avatar.id);
      const card = row.closest(".avatar-card");
      row.remove();
      card?.querySelector(".thumb")?.focus();
    } }, t("choice.keep")),
    h("button", { type: "button", class: "ghost small danger-text discard-avatar", "aria-label": t("choice.discard_named", { name: avatar.name }),
      onclick: safe(() => discardAvatar(view, avatar)) }, t("choice.discard")),
    h("button", { type: "button", class: "ghost small vary-avatar", "aria-label": t("choice.vary_named", { name: avatar.name }),
      onclick: safe(async (event) => {
        const button = event.currentTarget;
        button.disabled = true;
        try {
          const out = await call(state.api.post(`/avatars/${avatar.id}/variations`, { count: 2 }, { "Idempotency-Key": crypto.randomUUID() }));
          toast(t("avatar.variations_started", { count: out.items.length }), "ok");
          out.items.forEach((job) => renderJob(view, job));
          state.poll?.();
        } finally { button.disabled = false; }
      }) }, t("choice.vary")));
  return row;
}

/** Discard: delete after a confirmation (Cancel focused); the batch closes the gap and the focus goes
 * to the next picture (or the one before). */
async function discardAvatar(view, avatar) {
  const card = view.grid.querySelector(`.avatar-card[data-avatar-id="${avatar.id}"]`);
  const cards = [...view.grid.querySelectorAll(".avatar-card")];
  const at = cards.indexOf(card);
  const next = cards[at + 1] || cards[at - 1];
  const gone = await deleteAvatar(view, avatar, { title: t("choice.discard_title", { name: avatar.name }),
    text: t("choice.discard_text"), confirm: t("choice.discard") });
  if (gone && next?.isConnected) (next.querySelector(".thumb") || next.querySelector("button"))?.focus();
}

function avatarCard(view, avatar) {
  const ai = avatar.sourceType !== "uploaded";
  const editor = can(view.project, "editor");
  const open = safe(() => showAvatar(view, avatar));
  if (avatar.status === "rejected") {
    return h("article", { class: "card avatar-card rejected", dataset: { avatarId: avatar.id, status: avatar.status } },
      h("div", { class: "body" },
        h("h3", { class: "name", title: avatar.name }, "⚠ ", avatar.name),
        h("p", { class: "reason" }, avatar.statusReason || t("rejected.default_reason")),
        h("div", { class: "row" }, editor && h("button", { type: "button", class: "ghost small remove-rejected", "aria-label": t("action.remove_named", { name: avatar.name }),
          onclick: safe(async () => {
            await call(state.api.delete(`/avatars/${avatar.id}`));
            document.querySelector(`.avatar-card[data-avatar-id="${avatar.id}"]`)?.remove();
            showCount(view);
          }) }, t("action.remove")))));
  }
  const offlineArt = drawnOffline(avatar);
  const image = avatar.status === "ready"
    // The ribbon sits beside the button, not in it: the button's name ("Open Fitri") must hold all the
    // words it shows (WCAG 2.5.3 Label in Name).
    ? h("div", { class: "thumb-wrap" },
      h("button", { type: "button", class: "thumb", "aria-label": t("action.open_named", { name: avatar.name }), onclick: open },
        resignOnError(h("img", { src: avatar.thumbnailUrl, alt: "", width: THUMB, height: THUMB, loading: "lazy", decoding: "async" }),
          avatar.id, (fresh) => fresh.thumbnailUrl)),
      offlineArt ? h("span", { class: "ribbon" }, t("card.offline")) : null,
      choiceRow(view, avatar))
    : avatar.status === "uploading"
      // Asked for but never sent (a closed tab mid-upload): it will not finish by itself.
      ? h("div", { class: "thumb placeholder" }, t("card.upload_unfinished"))
      : h("div", { class: "thumb placeholder" }, h("span", { class: "spinner", "aria-hidden": "true" }), t("card.checking"));
  const badges = ["gender", "ageRange", "style"].filter((k) => avatar[k]).map((k) => h("span", { class: "badge" }, pretty(avatar[k])));
  if (avatar.sourceType === "image_to_image") badges.unshift(h("span", { class: "badge restyled" }, t("source.image_to_image")));
  if (avatar.status !== "ready") badges.unshift(h("span", { class: "badge status" }, avatar.status === "uploading" ? t("card.not_uploaded") : t("card.processing")));
  return h("article", { class: "card avatar-card", dataset: { avatarId: avatar.id, status: avatar.status, source: avatar.sourceType,
    generationId: avatar.generationId || undefined, imageIndex: avatar.imageIndex ?? undefined,
    prompt: avatar.generationId && avatar.prompt ? avatar.prompt : undefined } },
    image,
    h("div", { class: "body" },
      h("h3", { class: "name", title: avatar.name }, ai ? h("span", { class: "ai", title: t("source.text_to_image"), "aria-label": t("source.text_to_image") }, "✨") : null,
        h("span", { class: "ellipsis" }, avatar.name)),
      // Image first: what is not there yet ("No attributes", "Not used") is not written on every card,
      // and the actions show over the picture on hover and keyboard focus (always on touch screens).
      h("div", { class: "badges" }, badges),
      h("p", { class: "meta usage" }, avatar.usageCount ? t("card.used", { count: avatar.usageCount, when: when(avatar.lastUsedAt) }) : ""),
      editor && h("div", { class: "row card-actions" },
        avatar.status === "ready" ? h("button", { type: "button", class: "ghost small", "aria-label": t("action.edit_named", { name: avatar.name }), onclick: safe(() => showAvatar(view, avatar, { edit: true })) }, t("action.edit")) : null,
        h("button", { type: "button", class: "ghost small", "aria-label": t("action.delete_named", { name: avatar.name }),
          onclick: safe(() => deleteAvatar(view, avatar)) }, t("action.delete")))));
}

async function renameProject(view) {
  const { project, title } = view;
  const name = h("input", { id: "rename-input", value: project.name, maxlength: 100, required: true });
  const description = h("input", { value: project.description || "", maxlength: 1000 });
  const form = h("form", { class: "stack", onsubmit: safe(async (event) => {
    event.preventDefault();
    const updated = await call(state.api.put(`/projects/${project.id}`, { name: name.value.trim(), description: description.value.trim() }));
    Object.assign(project, updated);
    title.textContent = updated.name;
    document.getElementById("dialog").close();
    toast(t("project.renamed"), "ok");
    refreshCounts(view);
  }) }, h("label", {}, h("span", {}, t("field.name")), name), h("label", {}, h("span", {}, t("field.description")), description),
  h("div", { class: "row" }, h("button", { type: "submit", id: "rename-save" }, t("action.save"))));
  openDialog(t("project.rename_title"), form);
}

async function deleteProject(project) {
  // Fresh count: uploads and generations may have landed since the page was drawn.
  const n = (await call(state.api.get(`/projects/${project.id}`))).avatarCount;
  const ok = await confirmDialog(t("confirm.delete_title", { name: project.name }),
    t("project.delete_text", { avatars: count("count.avatars", n) }));
  if (!ok) return;
  await call(state.api.delete(`/projects/${project.id}`));
  toast(t("project.deleted", { name: project.name }), "ok");
  await historySettled();
  location.hash = "#/";
}

async function deleteAvatar(view, avatar, words = {}) {
  const ok = await confirmDialog(words.title || t("confirm.delete_title", { name: avatar.name }), words.text || t("avatar.delete_text"),
    words.confirm);
  if (!ok) return false;
  await call(state.api.delete(`/avatars/${avatar.id}`));
  deletedAvatars.add(avatar.id);
  document.querySelector(`.avatar-card[data-avatar-id="${avatar.id}"]`)?.remove();
  if (view.grid.isConnected) regroup(view, avatar.generationId);  // the batch closes the gap
  toast(t("avatar.deleted"), "ok");
  await refreshCounts(view);
  return true;
}

// ---- upload ---------------------------------------------------------------------------------------

async function uploadFiles(view, files) {
  if (!files.length) return;
  const accepted = [];
  for (const file of files) {
    const refusal = !TYPES.includes(file.type) ? t("upload.wrong_type")
      : file.size > MAX_BYTES ? t("upload.too_big") : file.size === 0 ? t("upload.empty") : null;
    if (refusal) uploadRow(view.uploads, file).fail(t("upload.not_uploaded", { reason: refusal }));
    else accepted.push(file);
  }
  for (let i = 0; i < accepted.length; i += 20) {
    const batch = accepted.slice(i, i + 20);
    const rows = batch.map((file) => uploadRow(view.uploads, file));
    const specs = batch.map((file) => ({ name: file.name.replace(/\.[^.]+$/, "").trim().slice(0, 100) || "Photo",
      contentType: file.type, size: file.size, ...personAsked() }));
    let created;
    try {
      created = await call(state.api.post(`/projects/${view.project.id}/avatars/uploads`, { files: specs }));
    } catch (error) {
      rows.forEach((row) => row.fail(t("upload.not_uploaded", { reason: errorText(error) })));
      continue;
    }
    const outcomes = await Promise.all(created.items.map((item, k) => sendOne(view, item, batch[k], rows[k])));
    sayBatch(view, outcomes.filter(Boolean));
  }
}

/** One file's line under the drop zone while it goes; a file refused before upload keeps its line. */
function uploadRow(list, file) {
  const bar = h("progress", { max: 1, value: 0, "aria-label": t("upload.progress_label", { file: file.name }) });
  const text = h("span", { class: "upload-label ellipsis" }, t("upload.row", { file: file.name, state: t("upload.waiting") }));
  const row = h("div", { class: "upload", dataset: { file: file.name } }, text, bar);
  list.append(row);
  return {
    row, bar,
    say(message) { text.textContent = t("upload.row", { file: file.name, state: message }); },
    fail(reason) {
      row.classList.add("failed");
      row.dataset.status = "failed";
      text.textContent = t("upload.row", { file: file.name, state: reason });
      text.classList.remove("ellipsis");
      bar.remove();
      row.append(h("button", { type: "button", class: "ghost small", "aria-label": t("action.dismiss_named", { name: file.name }),
        onclick: () => row.remove() }, t("action.dismiss")));
    },
  };
}

async function sendOne(view, item, file, row) {
  row.row.dataset.avatarId = item.avatar.id;
  try {
    row.say(t("upload.uploading"));
    await uploadToS3(item.upload, file, (fraction) => {
      row.bar.value = fraction;
      row.say(t("upload.uploading_percent", { percent: number(fraction, { style: "percent" }) }));
    });
    row.bar.value = 1;
    row.say(t("upload.checking"));
    const avatar = await waitForAvatar(item.avatar.id);
    row.row.remove();
    upsertCard(view, avatar, { first: true });
    if (avatar.status !== "ready" && avatar.status !== "rejected") watchProcessing(view);
    await refreshCounts(view);
    return { file, avatar };
  } catch (error) {
    row.fail(errorText(error));
    return null;
  }
}

/** One toast for a batch, not one per file (20 photos made 20 toasts): how many are ready, rejected
 * (their cards say why) or still being checked; a batch of one names its file. */
function sayBatch(view, outcomes) {
  if (!outcomes.length) return;
  const by = (status) => outcomes.filter((o) => o.avatar.status === status);
  const ready = by("ready"), rejected = by("rejected");
  const waiting = outcomes.length - ready.length - rejected.length;
  if (outcomes.length === 1) {
    const [{ file, avatar }] = outcomes;
    if (avatar.status === "ready") toast(t("upload.ready", { file: file.name }), "ok");
    else if (avatar.status === "rejected") toast(t("upload.rejected", { file: file.name, reason: avatar.statusReason || "" }), "error");
    else toast(t("upload.still_processing", { file: file.name }));
    return;
  }
  const parts = [ready.length && t("upload.batch_ready", { count: ready.length }),
    rejected.length && t("upload.batch_rejected", { count: rejected.length }),
    waiting && t("upload.batch_waiting", { count: waiting })].filter(Boolean);
  toast(parts.join(" · "), rejected.length ? "error" : "ok");
}

async function waitForAvatar(id, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  let avatar;
  do {
    avatar = await state.api.get(`/avatars/${id}`);
    if (avatar.status === "ready" || avatar.status === "rejected") return avatar;
    await new Promise((r) => setTimeout(r, 400));
  } while (Date.now() < deadline);
  return avatar;
}

// ---- generation jobs --------------------------------------------------------------------------------

const DISMISSED_KEY = "avatar-creator.dismissed-jobs";
const dismissed = () => { try { return JSON.parse(localStorage.getItem(DISMISSED_KEY)) || []; } catch { return []; } };
function dismissJob(id) {
  // Bounded: only the newest failures are ever offered again, so old ids can go.
  localStorage.setItem(DISMISSED_KEY, JSON.stringify([id, ...dismissed().filter((d) => d !== id)].slice(0, 200)));
}

/** Why a job failed or waits, in words: by its error code where the catalogue has one. */
const jobReason = (job) => errorText({ code: job.errorCode, status: 400, message: job.errorMessage, localised: job.errorMessage });

function jobText(job) {
  if (job.status === "pending") return job.errorMessage ? t("job.waiting_retry", { reason: jobReason(job) }) : t("job.queued");
  if (job.status === "processing") return t("job.generating", { percent: number(job.progress / 100, { style: "percent" }) });
  return t("job.failed", { reason: jobReason(job) });
}

/** Generations whose avatar this page has shown (or whose avatar was deleted here): never shown again. */
const shownJobs = new Set();
/** Jobs some of whose images were shown as they were made (their completion toast still comes). */
const earlyShown = new Set();
const deletedAvatars = new Set();

/** A tile per image of a running job, where its avatar will land in the grid, with its own state
 * (waiting, generating n%, retrying, failed); an image made while the others go on becomes its avatar
 * card at once. The job's card above the grid keeps Cancel / Retry / Dismiss. */
function renderTiles(view, job) {
  const tiles = () => [...view.grid.querySelectorAll(`.pending-tile[data-generation-id="${job.id}"]`)];
  if (job.status === "completed" || job.status === "cancelled" || !Array.isArray(job.images)) {
    tiles().forEach((tile) => tile.remove());
    regroup(view, job.id);
    return;
  }
  const name = job.request?.name || job.name || t("avatar.default_name");
  const drop = (tile) => { if (tile) { tile.remove(); regroup(view, job.id); } };
  for (const image of job.images) {
    const tile = view.grid.querySelector(`.pending-tile[data-generation-id="${job.id}"][data-image-index="${image.index}"]`);
    if (image.status === "done") {
      // The tile stays until its card takes its place (removed first, its batch would fall apart and
      // come back a moment later).
      if (!image.avatarId || deletedAvatars.has(image.avatarId) || document.querySelector(`.avatar-card[data-avatar-id="${image.avatarId}"]`)) {
        drop(tile);
      } else if (!tile?.dataset.landing) {
        earlyShown.add(job.id);
        if (tile) tile.dataset.landing = "1";
        state.api.get(`/avatars/${image.avatarId}`).then((avatar) => {
          if (view.grid.isConnected && !document.querySelector(`.avatar-card[data-avatar-id="${avatar.id}"]`)) upsertCard(view, avatar, { first: true });
          else drop(tile);
        }).catch(() => drop(tile));
      }
      continue;
    }
    const label = job.numImages > 1 ? t("tile.name", { name, n: image.index + 1, total: job.numImages }) : name;
    const words = image.status === "failed" ? t("tile.failed", { reason: errorText({ code: image.errorCode, status: 400 }) })
      : image.retrying ? t("tile.retrying") : job.status === "processing" ? t("tile.generating") : t("tile.waiting");
    const fresh = h("div", { class: `card pending-tile ${image.status}`, role: "group", "aria-label": label,
      dataset: { generationId: job.id, imageIndex: String(image.index), status: image.status, prompt: job.prompt || undefined } },
    h("div", { class: "thumb placeholder" },
      image.status === "failed" ? h("span", { "aria-hidden": "true" }, "⚠") : h("span", { class: "spinner", "aria-hidden": "true" }),
      h("span", { class: "tile-state" }, words),
      image.status === "failed" || job.status !== "processing" ? null
        : h("progress", { max: 100, value: job.progress || 0, "aria-label": t("job.progress_label", { name: label }) })),
    h("div", { class: "body" }, h("h3", { class: "name" }, h("span", { class: "ellipsis" }, label))));
    if (tile) tile.replaceWith(fresh);
    else {
      view.grid.prepend(fresh);
      regroup(view, job.id);
      view.grid.querySelector("#no-avatars")?.remove();
    }
  }
}

function renderJob(view, job) {
  const { jobs } = view;
  const existing = jobs.querySelector(`[data-generation-id="${job.id}"]`);
  if (job.status !== "completed") renderTiles(view, job);
  if (job.status === "completed") {
    existing?.remove();
    shownJobs.add(job.id);
    // Each image of the job is its own avatar; a job some of whose images failed keeps the others.
    const made = (job.avatars?.length ? job.avatars : [job.avatar]).filter((a) => a && !deletedAvatars.has(a.id)
      && !document.querySelector(`.avatar-card[data-avatar-id="${a.id}"]`));
    // Each lands where its tile was; the tiles of images not made go after.
    made.slice().reverse().forEach((a) => upsertCard(view, a, { first: true }));
    renderTiles(view, job);
    const all = (job.avatars?.length ? job.avatars : [job.avatar]).filter((a) => a && !deletedAvatars.has(a.id));
    if (made.length || (earlyShown.has(job.id) && all.length)) {
      earlyShown.delete(job.id);
      const partial = job.imagesFailed > 0;
      const name = job.request?.name || all[0].name;
      const what = all.length > 1 ? t("job.ready_many", { count: all.length, name }) : t("job.ready_one", { name: all[0].name });
      toast(partial ? t("job.ready_partial", { what, made: job.imagesMade, total: job.numImages }) : what, partial ? "info" : "ok", partial ? 8000 : 3500);
      refreshCounts(view);
    }
    return;
  }
  if (job.status === "cancelled") { existing?.remove(); return; }
  const name = job.request?.name || job.name || t("avatar.default_name");
  const card = h("div", { class: `job ${job.status}`, role: "group", "aria-label": t("job.label", { name }),
    dataset: { generationId: job.id, status: job.status } },
  h("div", { class: "row spread" }, h("strong", { class: "ellipsis" }, `${job.request?.sourceType === "image_to_image" ? "🎨" : "✨"} ${name}${job.numImages > 1 ? ` × ${job.numImages}` : ""}`),
    h("span", { class: "meta job-status" }, jobText(job))),
  job.status === "failed" ? null : h("progress", { max: 100, value: job.progress, "aria-label": t("job.progress_label", { name }) }),
  h("div", { class: "row" },
    job.status === "failed" && can(view.project, "editor") ? h("button", { type: "button", class: "small retry-job", onclick: safe(async (event) => {
      const button = event.currentTarget;
      button.disabled = true;
      try {
        renderJob(view, await call(state.api.post(`/generations/${job.id}/retry`)));
        state.poll?.();
      } catch (error) { button.disabled = false; throw error; }
    }) }, t("action.retry")) : null,
    job.status === "pending" && can(view.project, "editor") ? h("button", { type: "button", class: "ghost small cancel-job", onclick: safe(async () => {
      renderJob(view, await call(state.api.post(`/generations/${job.id}/cancel`)));
      toast(t("job.cancelled", { name }));
    }) }, t("action.cancel")) : null,
    job.status === "failed" ? h("button", { type: "button", class: "ghost small dismiss-job", onclick: () => {
      dismissJob(job.id);
      card.remove();
    } }, t("action.dismiss")) : null));
  if (existing) existing.replaceWith(card); else jobs.append(card);
}

/** Poll the project's active generations while the page is visible — jobs started in another tab or by
 * another app show up too. Fast while something runs, slow when idle, paused while the tab is hidden. */
function startPolling(view, { withFailures = false } = {}) {
  const { project, jobs } = view;
  const id = (state.pollId = (state.pollId || 0) + 1);
  const since = Date.now() - 10_000;
  let timer = null;
  const stillHere = () => state.pollId === id && state.project?.id === project.id && jobs.isConnected;
  const tick = async () => {
    clearTimeout(timer);
    if (!stillHere()) return;
    if (document.visibilityState === "visible") {
      try {
        const active = await state.api.get(`/projects/${project.id}/generations?status=active&limit=50`);
        if (!stillHere()) return;
        const known = new Set(active.items.map((j) => j.id));
        for (const job of active.items) renderJob(view, job);
        for (const card of jobs.querySelectorAll(".job:not(.failed)")) {
          if (!known.has(card.dataset.generationId)) renderJob(view, await state.api.get(`/generations/${card.dataset.generationId}`));
        }
        // A job started elsewhere can finish between two ticks: recent completions bring their avatar.
        const recent = await state.api.get(`/projects/${project.id}/generations?limit=10`);
        for (const job of recent.items) {
          if (job.status !== "completed" || shownJobs.has(job.id) || !job.avatarId || deletedAvatars.has(job.avatarId)) continue;
          if (Date.parse(job.completedAt || job.updatedAt) < since || document.querySelector(`.avatar-card[data-avatar-id="${job.avatarId}"]`)) {
            shownJobs.add(job.id);
            continue;
          }
          if (stillHere()) renderJob(view, await state.api.get(`/generations/${job.id}`));
        }
      } catch (error) {
        if (error.status === 401) return call(Promise.reject(error)).catch(() => {});
      }
      // Hidden tabs schedule nothing: visibilitychange calls state.poll when the person is back.
      timer = setTimeout(tick, jobs.querySelector(".job:not(.failed)") ? 1000 : 4000);
    }
  };
  state.poll = () => { if (stillHere()) tick(); };
  if (withFailures) {
    state.api.get(`/projects/${project.id}/generations?limit=20`).then((recent) => {
      const gone = new Set(dismissed());
      for (const job of recent.items) if (job.status === "failed" && !gone.has(job.id) && stillHere()) renderJob(view, job);
    }).catch(() => {});
  }
  tick();
}

// ---- stats ----------------------------------------------------------------------------------------

async function showStats() {
  if (!state.api) return;
  const s = await call(state.api.get("/stats"));
  const tiles = [[t("stats.projects"), s.totalProjects], [t("stats.avatars"), s.totalAvatars], [t("source.uploaded"), s.bySourceType.uploaded],
    [t("source.text_to_image"), s.bySourceType.text_to_image], [t("stats.from_presets"), s.bySourceType.preset], [t("stats.recent_uploads"), s.recentUploads],
    [t("stats.total_uses"), s.totalUsage], [t("stats.uses_per_avatar"), s.averageUsagePerAvatar], [t("stats.generating"), s.activeGenerations]]
    // Zeros say nothing: a tile shows only what has happened (a new account sees the next step instead).
    .filter(([, value]) => Number(value) > 0)
    .map(([text, value]) => h("div", { class: "tile" }, h("b", {}, number(Number(value), { maximumFractionDigits: 1 })), h("span", {}, text)));
  const start = h("div", { class: "empty-state", id: "stats-empty" }, h("h2", {}, t("stats.empty_title")), h("p", {}, t("stats.empty_text")));
  openDialog(t("stats.title"), h("div", { id: "stats", class: "stack" }, tiles.length ? h("div", { class: "stat-tiles" }, tiles) : start,
    h("h3", {}, t("stats.usage_by_app")), s.usageByApp.length ? barChart(s.usageByApp) : h("p", { class: "empty" }, t("stats.no_usage"))));
}

/** Bars in HTML, not a scaled SVG: labels keep the page's font size at any width. */
function barChart(rows) {
  const max = Math.max(1, ...rows.map((r) => r.count));
  return h("ul", { class: "chart", "aria-label": t("stats.uses_by_app") }, rows.map((r) => h("li", {},
    h("span", { class: "bar-label" }, r.appName),
    h("span", { class: "bar-track", "aria-hidden": "true" }, h("span", { class: "bar", style: `width:${Math.max(2, (r.count / max) * 100)}%` })),
    h("span", { class: "bar-value" }, r.count))));
}

boot();
