// Small DOM helpers: element builder, toasts, the dialog and its error line, human error text, dates.
import { ago, date, lang, t } from "./i18n.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Human names of the API's fields (catalogue keys field.<name>), used by the detail view, the forms
 * and validation messages. */
export const FIELDS = ["name", "prompt", "personaName", "personaAge", "personaPersonality", "personaBackground", "gender",
  "ageRange", "ethnicity", "bodyType", "hairStyle", "hairColor", "eyeColor", "skinTone", "style", "seed", "width",
  "height", "format", "bytes", "files", "projectId", "crop", "url", "description", "events", "hairLength", "glasses",
  "facialHair", "clothingStyle", "background", "expression", "suggest"];
export const label = (key) => (FIELDS.includes(key) ? t(`field.${key}`) : key.replace(/([A-Z])/g, " $1").replace(/^./, (c) => c.toUpperCase()));

export function toast(message, kind = "info", ms = 3500) {
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  const box = document.getElementById("toasts");
  // Inside an open modal dialog, or it would be inert (not read out, not on top) behind it.
  const host = dialog().open ? dialog() : document.body;
  if (box.parentElement !== host) host.append(box);
  box.append(el);
  // A batch of 20 uploads must not bury the page: only the newest few stay.
  while (box.children.length > (matchMedia("(max-width: 700px)").matches ? 2 : 4)) box.firstElementChild.remove();
  raise(box);
  setTimeout(() => { el.remove(); if (!box.children.length && box.matches(":popover-open")) box.hidePopover(); },
    kind === "error" ? ms * 2 : ms);
}

/** Toasts live in a manual popover: re-showing it puts it in the top layer above an open modal
 * dialog, so nothing is dimmed under the backdrop. */
function raise(box) {
  if (!box.showPopover) return;
  if (box.matches(":popover-open")) box.hidePopover();
  box.showPopover();
}

const dialog = () => document.getElementById("dialog");
export const dialogOpen = () => dialog().open;

// Back closes the open dialog (it used to stay open over the page Back led to). Opening a dialog
// pushes a history entry with the same URL, so Back pops it (no hashchange, no route) and closes the
// dialog; a dialog closed any other way takes its entry back off, so the next Back leaves the page.
let dialogEntry = null;      // the history.state our open dialog pushed
let leaving = Promise.resolve();  // settles once a history.back() we made has been handled
let skipPop = null;
window.addEventListener("popstate", () => {
  if (skipPop) { const done = skipPop; skipPop = null; done(); return; }
  if (dialogEntry && dialog().open) { dialogEntry = null; dialog().close(); }
});

function forgetDialogEntry() {
  if (dialogEntry && history.state?.dialog === dialogEntry.dialog) {
    leaving = new Promise((resolve) => { skipPop = resolve; });
    history.back();
  }
  dialogEntry = null;
}

/** Resolves once the dialog's history entry is gone: navigate after it, or Back's traversal would
 * land after (and undo) the navigation. */
export const historySettled = () => leaving;

/** Open the dialog with `content` (a node); resolves when it closes. With `url` (an avatar's
 * "#/projects/{pid}/avatars/{aid}") the dialog's history entry carries that address, so it can be
 * shared and reloaded; a dialog already open takes the new address in place (← / → between avatars). */
export function openDialog(title, content, { wide = false, onclose = null, url = undefined, kind = "" } = {}) {
  const d = dialog();
  if (!d.open) {
    const entry = dialogEntry = { dialog: crypto.randomUUID() };
    const push = () => { if (dialogEntry === entry) history.pushState({ ...(history.state || {}), ...entry }, "", url); };
    // A dialog opened right after another closed: its Back is still on its way. Push after it lands,
    // or that traversal would take this dialog's entry (and close it).
    if (skipPop) leaving.then(push); else push();
  } else if (url && dialogEntry) history.replaceState(history.state, "", url);
  d.dataset.kind = kind;
  delete d.dataset.avatarId;
  const box = document.getElementById("toasts");
  if (box.parentElement === d) document.body.append(box);
  d.replaceChildren(h("div", { class: "dialog-body" },
    h("div", { class: "dialog-head" },
      h("h2", { id: "dialog-title" }, title),
      h("button", { type: "button", class: "ghost small icon", "aria-label": t("action.close"), onclick: () => d.close() }, "✕")),
    h("p", { class: "dialog-error", id: "dialog-error", role: "alert", hidden: true }),
    content));
  d.classList.toggle("wide", wide);
  if (!d.open) d.showModal();
  if (box.children.length) { d.append(box); raise(box); }  // toasts already up stay readable above the backdrop
  return new Promise((resolve) => d.addEventListener("close", () => {
    forgetDialogEntry();
    if (box.parentElement === d) { document.body.append(box); if (box.children.length) raise(box); }
    onclose?.();
    resolve(d.returnValue);
  }, { once: true }));
}

export function closeDialog() { if (dialog().open) dialog().close(); }

/** The open dialog's address changes in place (an avatar's view: the picture or the developer's). */
export function setDialogUrl(url) { if (dialog().open && dialogEntry) history.replaceState(history.state, "", url); }

// The side panel the focus was last in (a submit button disabled while its request runs loses the
// focus to the page, but the person is still working in the panel).
let lastPanel = null;
document.addEventListener("focusin", (event) => { lastPanel = event.target.closest?.(".side-panel") || null; });

/** An error said where the person is looking: inside the open dialog, else as a toast. */
export function showError(message) {
  // The open dialog's line, else the side panel's the person is working in, else a toast.
  const line = dialog().open ? dialog().querySelector("#dialog-error")
    : lastPanel?.isConnected ? lastPanel.querySelector(".dialog-error") : null;
  if (line) {
    line.textContent = message;
    line.hidden = false;
    line.scrollIntoView({ block: "nearest" });
  } else toast(message, "error");
}

export function clearDialogError() {
  const line = dialog().querySelector("#dialog-error");
  if (line) { line.hidden = true; line.textContent = ""; }
}

/** A confirm dialog that says what will happen; resolves true on confirm. */
export async function confirmDialog(title, text, confirmLabel = t("action.delete")) {
  let confirmed = false;
  const yes = h("button", { type: "button", class: "danger", id: "confirm-yes", onclick: () => { confirmed = true; closeDialog(); } }, confirmLabel);
  const no = h("button", { type: "button", class: "ghost", id: "confirm-no", onclick: () => closeDialog() }, t("action.cancel"));
  const body = h("div", { class: "stack" },
    h("p", {}, text),
    h("div", { class: "row" }, yes, no));
  const closed = openDialog(title, body);
  // Focus the safe choice: an Enter pressed out of habit must not delete anything.
  no.focus();
  await closed;
  return confirmed;
}

export function when(iso) {
  if (!iso) return t("time.never");
  const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
  return seconds < 86400 ? ago(seconds) : date(iso);
}

export function duration(seconds) {
  if (seconds < 90) return t("time.seconds", { count: Math.max(1, Math.round(seconds)) });
  if (seconds < 5400) return t("time.minutes", { count: Math.round(seconds / 60) });
  return t("time.hours", { count: Math.round(seconds / 3600) });
}

/** API error codes with a sentence of their own (catalogue keys error.<code>): a person reads what
 * happened and what to do, never the developer's message. */
const CODES = ["unauthorized", "not_found", "conflict", "bad_json", "bad_request", "payload_too_large",
  "unsupported_media_type", "invalid_state", "avatar_not_ready", "crop_outside_image", "idempotency_key_reused",
  "upload_not_allowed", "unusable_image", "webhook_limit", "webhook_disabled", "service_unavailable", "internal_error",
  "queue_failed", "provider_unreachable", "provider_timeout", "provider_rate_limited", "provider_error", "provider_auth",
  "safety_unavailable", "unsafe_output", "model_not_served", "timed_out", "queue_timeout", "cancelled", "upload_failed", "forbidden"];

/** What went wrong and what to do next, in words, in the page's language. */
export function errorText(error) {
  if (!error) return t("error.unknown");
  if (error.status === 0) return t("error.network");
  const wait = error.retryAfter ? duration(error.retryAfter) : null;
  if (error.status === 429) {
    const { kind, limit } = error.details || {};
    if (kind === "active") return wait ? t("error.active_limit_wait", { limit: limit ?? "", wait }) : t("error.active_limit", { limit: limit ?? "" });
    if (kind === "daily") return wait ? t("error.daily_limit_wait", { limit: limit ?? "", wait }) : t("error.daily_limit", { limit: limit ?? "" });
    return wait ? t("error.too_many_wait", { wait }) : t("error.too_many");
  }
  if (error.status === 503 && (error.code === "service_unavailable" || !CODES.includes(error.code))) return wait ? t("error.unavailable_wait", { wait }) : t("error.unavailable");
  if (error.code === "validation_error" && Array.isArray(error.details) && error.details.length) {
    // The field names in words; the validator's own detail only in English (it is written in English).
    const fields = error.details.map((f) => {
      const key = String(f.field || "").split(".").filter((p) => !/^\d+$/.test(p)).pop() || "";
      if (!key || key === "body") return null;
      return lang() === "en" && f.message ? `${label(key)}: ${f.message}` : label(key);
    }).filter(Boolean);
    return fields.length ? t("error.validation_fields", { fields: [...new Set(fields)].join("; ") }) : t("error.validation");
  }
  // The content policy's refusal is written for the person by the API, in the language the page asked
  // for (Accept-Language): shown as is.
  if (error.code === "prompt_rejected") return error.message || t("error.prompt_rejected");
  // The webhook URL checks explain the address precisely, in English only: in other languages, our sentence.
  if (error.code?.startsWith?.("webhook_url_")) return lang() === "en" && error.message ? error.message : t("error.webhook_url");
  if (error.code === "not_found") {
    const what = ["projectId", "avatarId", "generationId", "webhookId"].find((k) => k in (error.details || {}));
    return t(what ? `error.not_found.${what}` : "error.not_found");
  }
  if (CODES.includes(error.code)) return t(`error.${error.code}`);
  if (error.status >= 500) return t("error.internal_error");
  return error.localised || t("error.unknown");
}

/** A catalogue message with nodes in it: "{cmd}" in the text becomes nodes.cmd (a <code>, a link). */
export function rich(key, nodes, params = {}) {
  return t(key, params).split(/(\{\w+\})/).filter(Boolean).map((part) => {
    const name = /^\{(\w+)\}$/.exec(part)?.[1];
    return name && nodes[name] ? nodes[name] : part;
  });
}
