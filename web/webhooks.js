// The Webhooks page: a user's endpoints for signed events (docs/events.md) — add, test, rotate, delete,
// and each one's recent deliveries. The signing secret is shown only when the API returns it (create, rotate).
import { call, safe, state } from "./core.js";
import { dateTime, number, t } from "./i18n.js";
import { clearDialogError, closeDialog, confirmDialog, h, openDialog, rich, showError, toast, when } from "./ui.js";

/** The types a webhook can subscribe to (webhook.test is sent by the test button only), in groups. */
/** (A function: the words follow the page's language.) */
export const eventGroups = () => [
  [t("webhooks.group.avatars"), [["avatar.ready", t("webhooks.group.ready"), t("webhooks.event.avatar.ready")],
    ["avatar.rejected", t("webhooks.group.rejected"), t("webhooks.event.avatar.rejected")],
    ["avatar.updated", t("webhooks.group.updated"), t("webhooks.event.avatar.updated")],
    ["avatar.deleted", t("webhooks.group.deleted"), t("webhooks.event.avatar.deleted")],
    ["avatar.shared", t("webhooks.group.shared"), t("webhooks.event.avatar.shared")],
    ["avatar.share_revoked", t("webhooks.group.share_revoked"), t("webhooks.event.avatar.share_revoked")]]],
  [t("webhooks.group.generations"), [["generation.completed", t("webhooks.group.completed"), t("webhooks.event.generation.completed")],
    ["generation.failed", t("deliveries.failed"), t("webhooks.event.generation.failed")],
    ["generation.cancelled", t("webhooks.group.cancelled"), t("webhooks.event.generation.cancelled")]]],
  [t("webhooks.group.projects"), [["project.deleted", t("webhooks.group.deleted"), t("webhooks.event.project.deleted")],
    ["project.member_added", t("webhooks.group.member_added"), t("webhooks.event.project.member_added")],
    ["project.member_removed", t("webhooks.group.member_removed"), t("webhooks.event.project.member_removed")]]],
];
const ALL_TYPES = eventGroups().flatMap(([, types]) => types.map(([type]) => type));
const MAX_WEBHOOKS = 10;
const statusWord = (status) => ({ delivered: t("deliveries.delivered"), retrying: t("deliveries.retrying"), failed: t("deliveries.failed") })[status];

const main = () => document.getElementById("main");

/** A URL that wraps where a reader expects it to (after "/", "?", "&", "." and "-"), not anywhere
 * in the middle of a word as on a phone before. */
const breakable = (url) => url.split(/(?<=[/?&.=-])/).flatMap((part, i) => (i ? [h("wbr"), part] : [part]));

export async function renderWebhooks() {
  main().replaceChildren(h("p", { class: "loading" }, t("webhooks.loading")));
  const list = h("div", { class: "webhook-list", id: "webhook-list" });
  const count = h("span", { id: "webhook-count" });
  const add = h("button", { type: "button", id: "add-webhook", onclick: safe(() => webhookForm(view)) }, t("webhooks.add"));
  const more = h("button", { type: "button", class: "ghost", hidden: true, onclick: safe(() => view.load(true)) }, t("action.load_more"));
  const view = { list, count, add, more, cursor: null, items: new Map() };
  view.load = async (next = false) => {
    const page = await call(state.api.get(`/webhooks?limit=${MAX_WEBHOOKS}${next && view.cursor ? `&cursor=${encodeURIComponent(view.cursor)}` : ""}`));
    if (!next) { view.items.clear(); list.replaceChildren(); }
    for (const webhook of page.items) upsert(view, webhook);
    view.cursor = page.nextCursor;
    more.hidden = !view.cursor;
    showCount(view);
  };
  await view.load();
  main().replaceChildren(
    h("nav", { class: "crumbs", "aria-label": t("nav.breadcrumb") }, h("a", { href: "#/" }, t("nav.all_projects"))),
    h("div", { class: "project-head" },
      h("div", { class: "project-title" }, h("h1", {}, t("nav.webhooks")),
        h("p", { class: "meta" }, count, " · ", rich("webhooks.intro", {
          spec: h("a", { href: "https://www.standardwebhooks.com/", target: "_blank", rel: "noopener" }, "Standard Webhooks") }))),
      h("div", { class: "row actions" }, add)),
    list, more);
  watch(view);
}

function showCount(view) {
  const n = view.items.size;
  view.count.textContent = t("webhooks.count", { count: n, max: MAX_WEBHOOKS });
  if (!n && !view.list.querySelector("#no-webhooks")) {
    view.list.append(h("div", { class: "empty-state", id: "no-webhooks" },
      h("div", { class: "empty-art", "aria-hidden": "true" }, "🔔"),
      h("h2", {}, t("webhooks.empty_title")),
      h("p", {}, t("webhooks.lead")),
      h("button", { type: "button", onclick: () => view.add.click() }, t("webhooks.add_first"))));
  }
  if (n) view.list.querySelector("#no-webhooks")?.remove();
}

function upsert(view, webhook, { first = false } = {}) {
  view.items.set(webhook.id, webhook);
  const card = webhookCard(view, webhook);
  const existing = view.list.querySelector(`[data-webhook-id="${webhook.id}"]`);
  if (existing) existing.replaceWith(card); else if (first) view.list.prepend(card); else view.list.append(card);
  showCount(view);
}

function remove(view, id) {
  view.items.delete(id);
  view.list.querySelector(`[data-webhook-id="${id}"]`)?.remove();
  showCount(view);
}

/** While the page is shown and the tab visible, the list is re-read now and then: deliveries happen
 * in the background (retries, disabling after days of failures). */
function watch(view) {
  const id = (state.pollId = (state.pollId || 0) + 1);
  const here = () => state.pollId === id && view.list.isConnected;
  let timer = null;
  const tick = async () => {
    clearTimeout(timer);
    if (!here() || document.visibilityState !== "visible") return;
    try {
      const page = await state.api.get(`/webhooks?limit=${MAX_WEBHOOKS}`);
      if (!here()) return;
      for (const webhook of page.items) if (view.items.has(webhook.id)) upsertIfChanged(view, webhook);
    } catch (error) {
      if (error.status === 401) return call(Promise.reject(error)).catch(() => {});
    }
    const busy = [...view.items.values()].some((w) => w.lastDelivery?.status === "retrying" || view.waiting?.has(w.id));
    timer = setTimeout(tick, busy ? 1000 : 10_000);
  };
  state.poll = () => { if (here()) tick(); };
  view.poll = state.poll;
  timer = setTimeout(tick, 10_000);
}

/** Redrawn only when something shown changed, so a focused button keeps its focus. */
function upsertIfChanged(view, webhook) {
  const old = view.items.get(webhook.id);
  const keep = (w) => JSON.stringify({ ...w, updatedAt: null });
  if (old && keep(old) === keep(webhook)) return;
  const card = view.list.querySelector(`[data-webhook-id="${webhook.id}"]`);
  const focused = card?.contains(document.activeElement) ? document.activeElement.dataset.action : null;
  upsert(view, webhook);
  if (focused) view.list.querySelector(`[data-webhook-id="${webhook.id}"] [data-action="${focused}"]`)?.focus();
  if (view.waiting?.get(webhook.id) === webhook.lastDelivery?.eventId && webhook.lastDelivery?.status !== "retrying") {
    view.waiting.delete(webhook.id);
  }
}

function eventsText(events) {
  if (ALL_TYPES.every((type) => events.includes(type))) return t("webhooks.all_events");
  return events.join(", ");
}

/** The last delivery in words: what happened, with the code or error, how long it took, when. */
function lastDeliveryText(last) {
  if (!last || !last.status) return t("webhooks.no_deliveries");
  const outcome = last.statusCode ? `HTTP ${last.statusCode}` : last.error || "";
  const parts = [outcome, last.durationMs !== null && last.durationMs !== undefined ? t("deliveries.ms", { ms: last.durationMs }) : "",
    last.attempt > 1 ? t("deliveries.attempt_n", { n: last.attempt }) : "", when(last.at)].filter(Boolean);
  return `${last.type || "event"} · ${parts.join(" · ")}`;
}

function statusBadge(webhook) {
  if (!webhook.enabled) return h("span", { class: "badge bad", dataset: { state: "disabled" } }, t("webhooks.disabled"));
  const status = webhook.lastDelivery?.status;
  if (!status) return h("span", { class: "badge", dataset: { state: "new" } }, t("webhooks.enabled_none"));
  const kind = status === "delivered" ? "good" : status === "retrying" ? "status" : "bad";
  return h("span", { class: `badge ${kind}`, dataset: { state: status } }, statusWord(status) || status);
}

function webhookCard(view, webhook) {
  const last = webhook.lastDelivery;
  const label = webhook.description || webhook.url;
  const action = (name, text, onclick, attrs = {}) => h("button", { type: "button", class: "ghost small", dataset: { action: name },
    "aria-label": `${text} — ${label}`, onclick: safe(onclick), ...attrs }, text);
  return h("article", { class: "card webhook-card", dataset: { webhookId: webhook.id, enabled: String(webhook.enabled) },
    "aria-label": t("webhooks.card_label", { name: label }) },
  h("div", { class: "webhook-head" },
    h("div", { class: "webhook-title" },
      h("h2", { class: "webhook-url" }, breakable(webhook.url)),
      webhook.description ? h("p", { class: "meta" }, webhook.description) : null),
    statusBadge(webhook)),
  !webhook.enabled ? h("p", { class: "reason disabled-reason" }, webhook.disabledReason || t("webhooks.disabled"),
    webhook.failingSince ? ` ${t("webhooks.failing_since", { when: dateTime(webhook.failingSince) })}` : "",
    ` — ${t("webhooks.disabled_help")}`) : null,
  h("dl", { class: "facts webhook-facts" },
    h("div", { class: "fact" }, h("dt", {}, t("webhooks.last_delivery")),
      h("dd", { class: `last-delivery ${last?.status || "none"}`, dataset: { status: last?.status || "none" } }, lastDeliveryText(last))),
    h("div", { class: "fact" }, h("dt", {}, t("field.events")), h("dd", { class: "webhook-events" }, eventsText(webhook.events))),
    h("div", { class: "fact" }, h("dt", {}, t("webhooks.group.added")), h("dd", {}, when(webhook.createdAt),
      webhook.secretRotatedAt ? ` · ${t("webhooks.rotated_when", { when: when(webhook.secretRotatedAt) })}` : ""))),
  h("div", { class: "row card-actions" },
    webhook.enabled
      ? action("test", t("webhooks.send_test"), (event) => sendTest(view, webhook, event.currentTarget))
      : action("enable", t("webhooks.enable"), () => setEnabled(view, webhook, true), { class: "secondary small" }),
    action("deliveries", t("webhooks.deliveries"), () => showDeliveries(webhook)),
    action("edit", t("action.edit"), () => webhookForm(view, webhook)),
    action("rotate", t("webhooks.rotate"), () => rotateSecret(view, webhook)),
    webhook.enabled ? action("disable", t("webhooks.disable"), () => setEnabled(view, webhook, false)) : null,
    action("delete", t("action.delete"), () => deleteWebhook(view, webhook), { class: "ghost small danger-text" })));
}

// ---- actions ---------------------------------------------------------------------------------------

async function sendTest(view, webhook, button) {
  // Not `disabled`: that would drop the keyboard focus from the button just pressed.
  if (button.getAttribute("aria-busy") === "true") return;
  button.setAttribute("aria-busy", "true");
  try {
    const { event } = await call(state.api.post(`/webhooks/${webhook.id}/test`));
    toast(t("webhooks.test_sent", { name: webhook.description || webhook.url }), "ok");
    // Delivered in the background: watch this webhook closely until its last delivery is this event.
    (view.waiting ||= new Map()).set(webhook.id, event.id);
    setTimeout(() => view.waiting?.delete(webhook.id), 30_000);
    setTimeout(() => view.poll?.(), 800);
  } finally { button.removeAttribute("aria-busy"); }
}

async function setEnabled(view, webhook, enabled) {
  const updated = await call(state.api.put(`/webhooks/${webhook.id}`, { enabled }));
  upsert(view, updated);
  view.list.querySelector(`[data-webhook-id="${webhook.id}"] [data-action="${enabled ? "test" : "enable"}"]`)?.focus();
  toast(enabled ? t("webhooks.enabled_toast") : t("webhooks.disabled_toast"), "ok");
}

async function deleteWebhook(view, webhook) {
  const ok = await confirmDialog(t("webhooks.delete_title"),
    t("webhooks.delete_text", { url: webhook.url }));
  if (!ok) return;
  await call(state.api.delete(`/webhooks/${webhook.id}`), { quiet404: true }).catch((error) => { if (error.status !== 404) throw error; });
  remove(view, webhook.id);
  toast(t("webhooks.deleted"), "ok");
  view.add.focus();
}

async function rotateSecret(view, webhook) {
  const go = h("button", { type: "button", id: "rotate-confirm", onclick: safe(async () => {
    clearDialogError();
    go.disabled = true;
    try {
      const rotated = await call(state.api.post(`/webhooks/${webhook.id}/rotate-secret`));
      const { secret, ...shown } = rotated;
      upsert(view, shown);
      showSecret(secret, t("webhooks.new_secret_title"),
        t("webhooks.rotated_help"));
    } finally { go.disabled = false; }
  }) }, t("webhooks.rotate"));
  const closed = openDialog(t("webhooks.rotate_title"), h("div", { class: "stack" },
    h("p", {}, t("webhooks.rotate_text")),
    h("div", { class: "row" }, go, h("button", { type: "button", class: "ghost", onclick: () => closeDialog() }, t("action.cancel")))));
  go.focus();
  await closed;
  view.list.querySelector(`[data-webhook-id="${webhook.id}"] [data-action="rotate"]`)?.focus();
}

/** The secret, once: in the open dialog, with a copy button and the warning that it will not be shown again. */
function showSecret(secret, title, note) {
  const value = h("code", { class: "secret", id: "webhook-secret" }, secret);
  const copied = h("span", { class: "meta", id: "copy-status", role: "status" });
  const copy = h("button", { type: "button", class: "secondary", id: "copy-secret", "aria-describedby": "webhook-secret",
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(secret);
        copied.textContent = t("webhooks.copied");
      } catch {
        getSelection().selectAllChildren(value);  // no clipboard access: selected, so Ctrl+C / ⌘C copies it
        copied.textContent = t("webhooks.selected");
      }
    } }, t("webhooks.copy"));
  const done = h("button", { type: "button", id: "secret-done", onclick: () => closeDialog() }, t("webhooks.saved_it"));
  document.getElementById("dialog-title").textContent = title;
  clearDialogError();
  const body = document.querySelector("#dialog .dialog-body");
  [...body.children].slice(2).forEach((el) => el.remove());  // keep the head and the error line
  const panel = h("div", { class: "stack", id: "secret-panel" },
    h("p", { class: "note warn", id: "secret-warning" }, h("strong", {}, t("webhooks.copy_now"), " "),
      t("webhooks.secret_help")),
    h("div", { class: "secret-box" }, value, copy), copied,
    note ? h("p", { class: "meta" }, note) : null,
    h("div", { class: "row" }, done));
  body.append(panel);
  // Shown once means once: closed, the secret leaves the page (a closed <dialog> keeps its content).
  document.getElementById("dialog").addEventListener("close", () => panel.remove(), { once: true });
  copy.focus();
}

// ---- the add / edit form ---------------------------------------------------------------------------

async function webhookForm(view, webhook = null) {
  const editing = Boolean(webhook);
  const url = h("input", { id: "webhook-url", type: "url", required: true, maxlength: 2048, autocomplete: "off", spellcheck: "false",
    placeholder: "https://example.com/webhooks/avatar-creator", value: webhook?.url || "", "aria-describedby": "webhook-url-help" });
  const description = h("input", { id: "webhook-description", maxlength: 1000, autocomplete: "off",
    placeholder: t("webhooks.description_placeholder"), value: webhook?.description || "" });
  const chosen = new Set(webhook?.events || ALL_TYPES);
  const boxes = [];
  const groups = eventGroups().map(([group, types]) => h("div", { class: "event-group" }, h("h3", {}, group),
    types.map(([type, text, help]) => {
      const box = h("input", { type: "checkbox", value: type, checked: chosen.has(type), id: `event-${type.replace(".", "-")}` });
      boxes.push(box);
      return h("label", { class: "check" }, box, h("span", {}, h("strong", {}, text), " ", h("code", {}, type),
        h("small", { class: "meta" }, help)));
    })));
  const all = h("button", { type: "button", class: "link", onclick: () => boxes.forEach((b) => { b.checked = true; }) }, t("webhooks.all"));
  const none = h("button", { type: "button", class: "link", onclick: () => boxes.forEach((b) => { b.checked = false; }) }, t("webhooks.none"));
  const submit = h("button", { type: "submit", id: "save-webhook" }, editing ? t("action.save") : t("webhooks.add"));
  const form = h("form", { id: "webhook-form", class: "stack", novalidate: true, onsubmit: safe(async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    clearDialogError();
    url.removeAttribute("aria-invalid");
    const events = boxes.filter((b) => b.checked).map((b) => b.value);
    const say = (text, field) => { field?.setAttribute("aria-invalid", "true"); field?.focus(); showError(text); };
    if (!url.value.trim()) return say(t("webhooks.url_required"), url);
    if (!events.length) return say(t("webhooks.choose_event"), boxes[0]);
    const body = { url: url.value.trim(), description: description.value.trim(),
      // Every type checked: left out, so the API's default (all types) applies.
      ...(events.length === ALL_TYPES.length && !editing ? {} : { events }) };
    submit.disabled = true;
    try {
      const saved = await call(editing ? state.api.put(`/webhooks/${webhook.id}`, body) : state.api.post("/webhooks", body));
      if (editing) {
        upsert(view, saved);
        closeDialog();
        toast(t("webhooks.saved"), "ok");
        return;
      }
      const { secret, ...shown } = saved;
      upsert(view, shown, { first: true });
      showSecret(secret, t("webhooks.added_title"));
    } catch (error) {
      if (error.details?.field === "url" || String(error.code).startsWith("webhook_url")) { url.setAttribute("aria-invalid", "true"); url.focus(); }
      throw error;
    } finally { submit.disabled = false; }
  }) },
  h("label", {}, h("span", {}, t("webhooks.url")), url,
    h("small", { class: "meta", id: "webhook-url-help" }, t("webhooks.url_help"))),
  h("label", {}, h("span", {}, t("webhooks.description")), description),
  h("fieldset", { class: "section events" },
    h("legend", {}, t("webhooks.events_legend")),
    h("p", { class: "meta row" }, t("webhooks.events_help"), all, none),
    h("div", { class: "event-groups" }, groups)),
  h("div", { class: "dialog-footer" }, submit, h("button", { type: "button", class: "ghost", onclick: () => closeDialog() }, t("action.cancel"))));
  const closed = openDialog(editing ? t("webhooks.edit_title") : t("webhooks.add_title"), form);
  url.focus();
  await closed;
}

// ---- deliveries ------------------------------------------------------------------------------------

async function showDeliveries(webhook) {
  const rows = h("tbody", {});
  const table = h("table", { class: "deliveries", id: "deliveries" },
    h("caption", { class: "meta" }, t("deliveries.caption")),
    h("thead", {}, h("tr", {}, [t("deliveries.time"), t("deliveries.event"), t("deliveries.attempt"), t("deliveries.result"), t("deliveries.duration")].map((c) => h("th", { scope: "col" }, c)))), rows);
  const empty = h("p", { class: "empty", id: "no-deliveries", hidden: true }, t("deliveries.empty"));
  let cursor = null;
  const more = h("button", { type: "button", class: "ghost", hidden: true, onclick: safe(() => load(true)) }, t("action.load_more"));
  const refresh = h("button", { type: "button", class: "ghost small", id: "refresh-deliveries", onclick: safe(() => load(false)) }, t("deliveries.refresh"));
  async function load(next) {
    const page = await call(state.api.get(`/webhooks/${webhook.id}/deliveries?limit=25${next && cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`));
    if (!next) rows.replaceChildren();
    for (const d of page.items) rows.append(deliveryRow(d));
    cursor = page.nextCursor;
    more.hidden = !cursor;
    empty.hidden = rows.children.length > 0;
    table.hidden = !rows.children.length;
  }
  const closed = openDialog(t("deliveries.title"), h("div", { class: "stack" },
    h("div", { class: "row spread" }, h("p", { class: "meta webhook-url" }, webhook.description ? `${webhook.description} · ` : "", webhook.url), refresh),
    table, empty, more), { wide: true });
  await load(false);
  refresh.focus();
  // While open (and the tab visible) the newest attempts keep coming in by themselves: a test event
  // sent, a retry made. Only the first page is re-read; once "Load more" was used, Refresh does it.
  let pages = 1;
  more.addEventListener("click", () => { pages += 1; });
  const tick = async () => {
    if (!table.isConnected) return;
    if (document.visibilityState === "visible" && pages === 1) await load(false).catch(() => {});
    if (table.isConnected) setTimeout(tick, DELIVERIES_EVERY_MS);
  };
  setTimeout(tick, DELIVERIES_EVERY_MS);
  await closed;
}

const DELIVERIES_EVERY_MS = 3000;

function deliveryRow(d) {
  const result = d.statusCode ? `HTTP ${d.statusCode}` : d.error || "—";
  const at = d.at ? new Date(d.at) : null;
  return h("tr", { dataset: { eventId: d.eventId, status: d.status || "" } },
    h("td", { "data-label": t("deliveries.time") }, at ? h("time", { datetime: d.at, title: dateTime(at) }, dateTime(at)) : "—"),
    h("td", { "data-label": t("deliveries.event") }, h("span", { class: "event-type" }, d.type || "event"), " ", h("code", { class: "event-id" }, d.eventId)),
    h("td", { "data-label": t("deliveries.attempt") }, String(d.attempt)),
    h("td", { "data-label": t("deliveries.result") }, h("span", { class: `badge ${d.status === "delivered" ? "good" : d.status === "retrying" ? "status" : "bad"}` },
      statusWord(d.status) || d.status || "—"), " ", h("span", { class: "delivery-result" }, result)),
    h("td", { "data-label": t("deliveries.duration") }, d.durationMs !== null && d.durationMs !== undefined ? t("deliveries.ms", { ms: d.durationMs }) : "—"));
}
