// "Your user id" (issue 30): a project owner adds a member by their Lumiku user id, so the page shows
// the signed-in person theirs, with Copy. The id is the token's `sub`: the page holds the token and
// only reads its payload for display (the API checks the signature; nothing here is trusted).
import { state } from "./core.js";
import { t } from "./i18n.js";
import { h, openDialog } from "./ui.js";

/** The `sub` of a JWT, or null when the token is not one (base64url payload, UTF-8 JSON). */
export function tokenSubject(token) {
  try {
    const part = String(token).split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")), (c) => c.charCodeAt(0));
    const sub = JSON.parse(new TextDecoder().decode(bytes)).sub;
    return typeof sub === "string" && sub ? sub : null;
  } catch { return null; }
}

export const userId = () => (state.api && tokenSubject(state.api.token)) || state.user || "";

/** Copy `text`: the clipboard API where the page may use it, else `shown` (a field or the element
 * showing it) selected and the older copy command. True when copied; false leaves it selected for Ctrl+C. */
export async function copyText(text, shown) {
  try {
    if (navigator.clipboard?.writeText) { await navigator.clipboard.writeText(text); return true; }
  } catch { /* not allowed here (permissions, an insecure origin): the fallback below */ }
  if ("select" in shown) { shown.focus(); shown.select(); } else {
    const range = document.createRange();
    range.selectNodeContents(shown);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
  }
  try { return document.execCommand("copy"); } catch { return false; }
}

/** A Copy button for the id and the status line a screen reader reads out ("Copied"). */
function copyControl(id, shown, buttonId, statusId) {
  const status = h("span", { id: statusId, class: "meta copy-status", role: "status" });
  const button = h("button", { type: "button", class: "secondary small", id: buttonId, onclick: async () => {
    status.textContent = "";  // a second Copy is read out again
    const copied = await copyText(id, shown);
    status.textContent = copied ? t("account.copied") : t("account.copy_yourself");
  } }, t("account.copy"));
  return { button, status };
}

/** The account dialog (the header's "Your ID"): the id in a field, Copy, and what it is for. */
export function showAccount() {
  const id = userId();
  const field = h("input", { id: "user-id", readonly: true, value: id, "aria-describedby": "user-id-help",
    size: Math.min(40, Math.max(8, id.length + 2)), onfocus: (event) => event.target.select() });
  const { button, status } = copyControl(id, field, "copy-user-id", "user-id-status");
  openDialog(t("account.title"), h("div", { class: "stack", id: "account" },
    h("label", { for: "user-id" }, t("account.user_id")),
    h("div", { class: "row" }, field, button),
    status,
    h("p", { class: "meta", id: "user-id-help" }, t("account.user_id_help"))));
  button.focus();
}

/** The same on the projects page, one line: the header has no room for the button on a phone. */
export function accountLine() {
  const id = userId();
  const code = h("code", { id: "my-id" }, id);
  const { button, status } = copyControl(id, code, "copy-my-id", "my-id-status");
  return h("p", { class: "meta my-id-line" }, h("span", {}, t("account.your_id")), " ", code, " ", button, " ", status);
}

/** The header's button that opens it (before Sign out; its words follow the language, data-i18n). */
export function installAccount() {
  const signOut = document.getElementById("signout-button");
  if (!signOut || document.getElementById("account-button")) return;
  signOut.before(h("button", { type: "button", class: "ghost", id: "account-button", "aria-haspopup": "dialog",
    "data-i18n": "account.button", onclick: showAccount }, t("account.button")));
}
