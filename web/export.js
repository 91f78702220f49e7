// Exports (issue 29, docs/exports.md): start a zip of one avatar or of a whole project, follow it while
// it is on screen, then offer the download. An export runs on a worker for seconds to minutes, so the
// page reads GET /exports/{id} with a growing pause (1 s, 1.6 s, 2.6 s … at most 10 s), and only
// while a row showing it is in the page and the tab is visible: leaving the view ends the reads.
// The exports started in this tab are remembered (sessionStorage), so the project's "Exports" list
// and an avatar's lightbox find them again after a redraw or a reload.
import { call, state } from "./core.js";
import { number, t } from "./i18n.js";
import { duration, errorText, h } from "./ui.js";

const KEY = "avatar-creator.exports";
const KEEP = 20;           // the session's newest exports; older ones are still on the server until they expire
const FIRST_MS = 1000;
const GROWTH = 1.6;
const MAX_MS = 10_000;
const URL_MARGIN_S = 30;   // a download URL this close to its end is signed again before it is used
const STARTED = "avatar-creator:export-started";
const ENDED = new Set(["completed", "failed", "expired"]);

// ---- what this tab started ----------------------------------------------------------------------

function remembered() {
  try { return JSON.parse(sessionStorage.getItem(KEY)) || []; } catch { return []; }
}

/** This user's exports started in this tab, newest first (a shared computer signs in as someone else). */
const mine = () => remembered().filter((r) => r.user === state.user);

function remember(record) {
  const rest = remembered().filter((r) => r.id !== record.id);
  sessionStorage.setItem(KEY, JSON.stringify([record, ...rest].slice(0, KEEP)));
}

/** The last state seen is kept with the record: a row drawn again shows it before the next read. */
function note(exp) {
  const records = remembered();
  const record = records.find((r) => r.id === exp.id);
  if (!record) return;
  Object.assign(record, { status: exp.status, done: exp.progress?.done ?? 0, total: exp.progress?.total ?? 0,
    bytes: exp.bytes ?? null, errorCode: exp.errorCode ?? null });
  sessionStorage.setItem(KEY, JSON.stringify(records));
}

// ---- following an export ------------------------------------------------------------------------

/** One reader per export however many rows show it (the lightbox and the project's list). */
const followed = new Map();  // export id → { rows: Set<{el, show}>, timer, delay, last, busy, asleep }

function follow(id, row) {
  let f = followed.get(id);
  if (!f) followed.set(id, (f = { rows: new Set(), timer: null, delay: FIRST_MS, last: null, busy: false, asleep: false, due: false }));
  f.rows.add(row);
  if (f.last) row.show(f.last);
  // After the task that made the row has put it in the page (a row not in the page stops the reads).
  if (!f.timer && !f.busy && !f.due && !(f.last && ENDED.has(f.last.status))) {
    f.due = true;
    queueMicrotask(() => { f.due = false; read(id); });
  }
}

async function read(id) {
  const f = followed.get(id);
  if (!f) return;
  f.timer = null;
  for (const row of [...f.rows]) if (!row.el.isConnected) f.rows.delete(row);
  if (!f.rows.size || !state.api) { followed.delete(id); return; }  // nobody looks any more: stop
  if (document.visibilityState !== "visible") { f.asleep = true; return; }  // visibilitychange wakes it
  f.busy = true;
  let wait = f.delay;
  try {
    const exp = await state.api.get(`/exports/${id}`);
    exp.readAt = Date.now();
    f.last = exp;
    note(exp);
    f.rows.forEach((row) => row.show(exp));
    if (ENDED.has(exp.status)) return;
    f.delay = Math.min(MAX_MS, f.delay * GROWTH);
  } catch (error) {
    if (error.status === 401) { call(Promise.reject(error)).catch(() => {}); return; }
    if (error.status === 404) {  // expired and gone, or never this user's: said, and no more reads
      f.last = { id, status: "gone", progress: { done: 0, total: 0 } };
      f.rows.forEach((row) => row.show(f.last));
      return;
    }
    // Offline or busy: the same growing pause (or the server's Retry-After), the row keeps its state.
    if (error.retryAfter) wait = Math.max(wait, error.retryAfter * 1000);
    f.delay = Math.min(MAX_MS, f.delay * GROWTH);
  } finally {
    f.busy = false;
  }
  f.timer = setTimeout(() => read(id), wait);
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState !== "visible") return;
  for (const [id, f] of followed) if (f.asleep && !f.busy) { f.asleep = false; read(id); }
});

/** A fresh download URL when the one in hand is about to end (they live `downloadExpiresIn` s). */
async function downloadUrl(id) {
  const f = followed.get(id);
  const last = f?.last;
  if (last?.downloadUrl && Date.now() - last.readAt < ((last.downloadExpiresIn || 300) - URL_MARGIN_S) * 1000) return last.downloadUrl;
  const exp = await call(state.api.get(`/exports/${id}`));
  exp.readAt = Date.now();
  if (f) f.last = exp;
  return exp.downloadUrl;
}

// ---- rows ---------------------------------------------------------------------------------------

/** "Maya-B" → "Maya-B.zip": the name offered for the file (the browser keeps it for same-origin URLs only). */
const zipName = (name) => `${String(name || "export").replace(/[\\/:*?"<>|]+/g, "-").trim().slice(0, 80) || "export"}.zip`;

function size(bytes) {
  if (!bytes) return "";
  return bytes >= 1024 * 1024 ? t("export.mb", { size: number(bytes / 1024 / 1024, { maximumFractionDigits: 1 }) })
    : t("export.kb", { size: number(Math.max(1, Math.round(bytes / 1024))) });
}

/** One export: what it is, its state in words (read out when it changes), a progress bar while it
 * runs, the download when it is done, the reason when it failed. */
function exportRow(record) {
  const what = record.scope === "project" ? t("export.of_project", { name: record.name }) : t("export.of_avatar", { name: record.name });
  // The state in words is a live region (read out when it changes); the count beside it is not, or
  // every avatar written would be read out.
  const words = h("span", { class: "export-state", role: "status" });
  const count = h("span", { class: "meta export-count" });
  const bar = h("progress", { max: 1, "aria-label": t("export.progress_label", { what }) });
  const reason = h("p", { class: "form-error export-error", role: "alert", hidden: true });
  // An href from the start: a link without one is not a link (no role, no Tab stop) until the first read.
  const link = h("a", { class: "button small export-download", href: "#", hidden: true, download: zipName(record.name),
    "aria-label": t("export.download_named", { what }) }, t("export.download"));
  // An export that failed or is gone can be started again from its row (a new export, a new row).
  const again = startButton(null, t("export.again"), async () => {
    reason.hidden = true;
    await start(record.scope, { id: record.targetId, name: record.name }, record.projectId, (text) => {
      reason.textContent = text;
      reason.hidden = false;
    });
  });
  again.classList.add("small", "export-again");
  again.setAttribute("aria-label", t("export.again_named", { what }));
  again.hidden = true;
  const el = h("div", { class: "export-row", dataset: { exportId: record.id, scope: record.scope, targetId: record.targetId } },
    h("div", { class: "row spread" }, h("strong", { class: "ellipsis" }, what), h("span", { class: "row" }, words, count)),
    bar, reason, h("div", { class: "row" }, link, again));
  const show = (exp) => {
    const { status } = exp;
    const { done = 0, total = 0 } = exp.progress || {};
    el.dataset.status = status;
    const text = t(`export.status_${status}`);
    if (words.textContent !== text) words.textContent = text;
    count.textContent = status === "completed" ? size(exp.bytes)
      : !ENDED.has(status) && status !== "gone" && total > 1 ? t("export.progress", { done, total }) : "";
    bar.hidden = ENDED.has(status) || status === "gone";
    if (total > 0) { bar.max = total; bar.value = Math.min(done, total); }
    if (status === "failed") {
      reason.textContent = exp.errorCode === "not_found" ? t("export.failed_not_found")
        : exp.errorCode ? errorText({ code: exp.errorCode, status: 400, localised: t("export.failed_text") }) : t("export.failed_text");
      reason.hidden = false;
    }
    link.hidden = status !== "completed";
    again.hidden = !["failed", "expired", "gone"].includes(status);
    if (status === "completed" && exp.downloadUrl) link.href = exp.downloadUrl;
  };
  // The URL was signed at the last read and lives 5 minutes: a later click signs it again first.
  link.addEventListener("click", async (event) => {
    if (link.dataset.fresh) { delete link.dataset.fresh; return; }
    event.preventDefault();
    try {
      const url = await downloadUrl(record.id);
      if (!url) return;
      link.href = url;
      link.dataset.fresh = "1";
      link.click();
    } catch { /* said by call() */ }
  });
  if (record.status) show({ status: record.status, progress: { done: record.done, total: record.total }, bytes: record.bytes, errorCode: record.errorCode });
  else show({ status: "pending", progress: { done: 0, total: 0 } });
  follow(record.id, { el, show });
  return el;
}

// ---- starting one -------------------------------------------------------------------------------

/** Words for a refused start: the daily limit says how many and when, the rest as everywhere. */
function refusal(error) {
  if (error.status === 429 && error.details?.kind === "exports") {
    const limit = error.details.limit ?? "";
    return error.retryAfter ? t("export.daily_limit_wait", { limit, wait: duration(error.retryAfter) }) : t("export.daily_limit", { limit });
  }
  if (error.status === 409) return t("export.not_ready");
  return errorText(error);
}

/** POST the export; the new record is announced to every list on the page (the project's "Exports"). */
async function start(scope, target, projectId, say) {
  const path = scope === "project" ? `/projects/${target.id}/export` : `/avatars/${target.id}/export`;
  let exp;
  try {
    exp = await state.api.post(path);
  } catch (error) {
    if (error.status === 401) return call(Promise.reject(error)).catch(() => null);
    say(refusal(error));
    return null;
  }
  const record = { id: exp.id, user: state.user, scope, targetId: target.id, projectId, name: target.name,
    startedAt: exp.createdAt || new Date().toISOString(), status: exp.status, done: exp.progress?.done ?? 0,
    total: exp.progress?.total ?? 0 };
  remember(record);
  document.dispatchEvent(new CustomEvent(STARTED, { detail: record }));
  return record;
}

function startButton(id, text, onclick) {
  return h("button", { type: "button", class: "secondary", id, onclick: async (event) => {
    const button = event.currentTarget;
    if (button.disabled) return;
    button.disabled = true;  // one click, one export (each counts against the daily limit)
    try { await onclick(); } finally { button.disabled = false; }
  } }, text);
}

/** The lightbox's Export: the button, and under it this avatar's latest export of this tab. */
export function avatarExport(avatar) {
  const error = h("p", { class: "form-error", id: "export-error", role: "alert", hidden: true });
  const slot = h("div", { class: "export-slot" });
  const say = (text) => { error.textContent = text; error.hidden = !text; };
  const show = (record) => slot.replaceChildren(exportRow(record));
  const earlier = mine().find((r) => r.scope === "avatar" && r.targetId === avatar.id);
  if (earlier) show(earlier);
  const control = h("div", { class: "export-control stack", id: "avatar-export" });
  // Its own start and a row's "Export again" both announce the new export.
  const onStarted = (event) => {
    if (!control.isConnected) { document.removeEventListener(STARTED, onStarted); return; }
    if (event.detail.scope === "avatar" && event.detail.targetId === avatar.id) show(event.detail);
  };
  document.addEventListener(STARTED, onStarted);
  const button = startButton("export-avatar", t("export.button"), async () => {
    say("");
    await start("avatar", avatar, avatar.projectId, say);
  });
  control.append(h("div", { class: "row" }, button, h("span", { class: "meta" }, t("export.avatar_hint"))), error, slot);
  return control;
}

/** The project's "Export project" button and its "Exports" list (this tab's exports of the project and
 * of its avatars, newest first; hidden while there are none). */
export function projectExports(project) {
  const list = h("div", { class: "export-list" });
  const error = h("p", { class: "form-error", id: "export-project-error", role: "alert", hidden: true });
  const section = h("section", { class: "exports", id: "exports", "aria-labelledby": "exports-title", hidden: true },
    h("h2", { id: "exports-title" }, t("export.list_title")), error, list);
  const say = (text) => { error.textContent = text; error.hidden = !text; if (text) section.hidden = false; };
  const add = (record) => {
    list.querySelector(`.export-row[data-export-id="${record.id}"]`)?.remove();
    list.prepend(exportRow(record));
    section.hidden = false;
  };
  mine().filter((r) => r.projectId === project.id).reverse().forEach(add);
  const onStarted = (event) => {
    if (!section.isConnected) { document.removeEventListener(STARTED, onStarted); return; }
    if (event.detail.projectId === project.id) add(event.detail);
  };
  document.addEventListener(STARTED, onStarted);
  const button = startButton("export-project", t("export.project_button"), async () => {
    say("");
    const record = await start("project", project, project.id, say);
    if (record) section.querySelector(`.export-row[data-export-id="${record.id}"] .export-state`)?.scrollIntoView({ block: "nearest" });
  });
  return { button, section };
}
