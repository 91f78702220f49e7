// Small DOM helpers: element builder, toasts, the dialog, dates.

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

export function toast(message, kind = "info", ms = 4000) {
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  const box = document.getElementById("toasts");
  box.append(el);
  // A batch of 20 uploads must not bury the page: only the newest few stay.
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => el.remove(), kind === "error" ? ms * 2 : ms);
}

const dialog = () => document.getElementById("dialog");

/** Open the dialog with `content` (a node); resolves when it closes. */
export function openDialog(title, content, { wide = false } = {}) {
  const d = dialog();
  d.replaceChildren(h("div", { class: "dialog-body" },
    h("div", { class: "dialog-head" },
      h("h2", { id: "dialog-title" }, title),
      h("button", { type: "button", class: "ghost small", "aria-label": "Close", onclick: () => d.close() }, "✕")),
    content));
  d.style.width = wide ? "min(1000px, 96vw)" : "";
  if (!d.open) d.showModal();
  return new Promise((resolve) => d.addEventListener("close", () => resolve(d.returnValue), { once: true }));
}

export function closeDialog() { if (dialog().open) dialog().close(); }

/** A confirm dialog that says what will happen; resolves true on confirm. */
export async function confirmDialog(title, text, confirmLabel = "Delete") {
  let confirmed = false;
  const body = h("div", { class: "row" },
    h("p", {}, text),
    h("div", { class: "row" },
      h("button", { type: "button", class: "danger", onclick: () => { confirmed = true; closeDialog(); } }, confirmLabel),
      h("button", { type: "button", class: "ghost", onclick: () => closeDialog() }, "Cancel")));
  await openDialog(title, body);
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

export function errorText(error) {
  if (error?.code === "validation_error" && error.details) {
    const fields = Array.isArray(error.details) ? error.details : error.details.fields || error.details.files;
    if (Array.isArray(fields) && fields.length) {
      return `${error.message}: ${fields.map((f) => `${f.field || f.loc || ""} ${f.message || ""}`.trim()).join("; ")}`;
    }
  }
  return error?.message || String(error);
}
