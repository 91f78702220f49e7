// Small DOM helpers: element builder, toasts, the dialog and its error line, human error text, dates.

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

/** Human names of the API's fields, used by the detail view, the forms and validation messages. */
export const LABELS = {
  name: "Name", prompt: "Description", personaName: "Persona name", personaAge: "Age",
  personaPersonality: "Personality", personaBackground: "Background", gender: "Gender", ageRange: "Age range",
  ethnicity: "Ethnicity", bodyType: "Body type", hairStyle: "Hair style", hairColor: "Hair colour",
  eyeColor: "Eyes", skinTone: "Skin tone", style: "Style", seed: "Seed", width: "Width", height: "Height",
  format: "Format", bytes: "File size", files: "Files", projectId: "Project", crop: "Crop",
};
export const label = (key) => LABELS[key] || key.replace(/([A-Z])/g, " $1").replace(/^./, (c) => c.toUpperCase());

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

/** Open the dialog with `content` (a node); resolves when it closes. */
export function openDialog(title, content, { wide = false, onclose = null } = {}) {
  const d = dialog();
  if (!d.open) {
    dialogEntry = { dialog: crypto.randomUUID() };
    history.pushState({ ...(history.state || {}), ...dialogEntry }, "");
  }
  const box = document.getElementById("toasts");
  if (box.parentElement === d) document.body.append(box);
  d.replaceChildren(h("div", { class: "dialog-body" },
    h("div", { class: "dialog-head" },
      h("h2", { id: "dialog-title" }, title),
      h("button", { type: "button", class: "ghost small icon", "aria-label": "Close", onclick: () => d.close() }, "✕")),
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

/** An error said where the person is looking: inside the open dialog, else as a toast. */
export function showError(message) {
  const line = dialog().open ? dialog().querySelector("#dialog-error") : null;
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
export async function confirmDialog(title, text, confirmLabel = "Delete") {
  let confirmed = false;
  const yes = h("button", { type: "button", class: "danger", id: "confirm-yes", onclick: () => { confirmed = true; closeDialog(); } }, confirmLabel);
  const no = h("button", { type: "button", class: "ghost", id: "confirm-no", onclick: () => closeDialog() }, "Cancel");
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
  if (!iso) return "never";
  const date = new Date(iso);
  const seconds = (Date.now() - date.getTime()) / 1000;
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return date.toLocaleDateString();
}

export function duration(seconds) {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

/** What went wrong and what to do next, in words (the API's `message`, made actionable where we can). */
export function errorText(error) {
  if (!error) return "Something went wrong — try again.";
  const wait = error.retryAfter ? duration(error.retryAfter) : null;
  if (error.status === 429) {
    const { kind, limit } = error.details || {};
    if (kind === "active") {
      return `${limit ?? "Too many"} generations are running — wait for one to finish or cancel one${wait ? `, then try again (in about ${wait})` : ""}.`;
    }
    if (kind === "daily") return `You have used today's ${limit ?? ""} generations — try again ${wait ? `in ${wait}` : "tomorrow"}.`.replace("  ", " ");
    return `${error.message} — try again${wait ? ` in ${wait}` : " in a moment"}.`;
  }
  if (error.status === 503) return `${error.message} — try again${wait ? ` in ${wait}` : " in a moment"}.`;
  if (error.code === "validation_error" && Array.isArray(error.details) && error.details.length) {
    const fields = error.details.map((f) => {
      const key = String(f.field || "").split(".").filter((p) => !/^\d+$/.test(p)).pop() || "";
      return `${key && key !== "body" ? `${label(key)}: ` : ""}${f.message || ""}`.trim();
    });
    return `${error.message} — ${fields.join("; ")}`;
  }
  // The content policy's refusal is written for the person by the API (in their language): show it as is.
  if (error.code === "prompt_rejected") return error.message || "This request is not allowed — reword it and try again.";
  if (error.status >= 500) return `Something went wrong on our side (${error.message}) — try again.`;
  return error.message || String(error);
}
