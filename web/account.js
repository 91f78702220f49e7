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

/** Copy `text`: the clipboard API where the page may use it, else the selected field and the older
 * copy command. True when the text was copied; false leaves it selected for Ctrl+C. */
export async function copyText(text, field) {
  try {
    if (navigator.clipboard?.writeText) { await navigator.clipboard.writeText(text); return true; }
  } catch { /* not allowed here (permissions, an insecure origin): the fallback below */ }
  field.focus();
  field.select();
  try { return document.execCommand("copy"); } catch { return false; }
}

/** The account dialog: the id, Copy, and a status line a screen reader reads out ("Copied"). */
export function showAccount() {
  const id = userId();
  const field = h("input", { id: "user-id", readonly: true, value: id, "aria-describedby": "user-id-help",
    size: Math.min(40, Math.max(8, id.length + 2)), onfocus: (event) => event.target.select() });
  const status = h("p", { id: "user-id-status", class: "meta", role: "status" });
  const copy = h("button", { type: "button", class: "secondary", id: "copy-user-id", onclick: async () => {
    status.textContent = "";  // a second Copy is read out again
    const copied = await copyText(id, field);
    status.textContent = copied ? t("account.copied") : t("account.copy_yourself");
  } }, t("account.copy"));
  openDialog(t("account.title"), h("div", { class: "stack", id: "account" },
    h("label", { for: "user-id" }, t("account.user_id")),
    h("div", { class: "row" }, field, copy),
    status,
    h("p", { class: "meta", id: "user-id-help" }, t("account.user_id_help"))));
  copy.focus();
}

/** The header's button that opens it (before Sign out; its words follow the language, data-i18n). */
export function installAccount() {
  const signOut = document.getElementById("signout-button");
  if (!signOut || document.getElementById("account-button")) return;
  signOut.before(h("button", { type: "button", class: "ghost", id: "account-button", "aria-haspopup": "dialog",
    "data-i18n": "account.button", onclick: showAccount }, t("account.button")));
}
