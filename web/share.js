// The "Share" panel of an avatar's dialog (issue 29, docs/sharing.md): make a link with an expiry,
// a label and the details it shows; copy it (its token is shown only once); list and revoke links.
import { PERSONA_KEYS, call, safe, select, state } from "./core.js";
import { dateTime, t } from "./i18n.js";
import { h, label, toast } from "./ui.js";

const DAYS = [1, 7, 30, 90, 365];
const CHOICES = [...PERSONA_KEYS, "attributes", "prompt"];
const fieldName = (key) => (key === "attributes" ? t("share.field_attributes") : label(key));

/** The absolute URL of a link the API answers as a path (`/api/apps/avatar-creator/s/{token}`). */
export const shareUrl = (link) => new URL(link, state.api?.baseUrl || window.location.origin).href;

/** A `<details>` panel for one ready avatar; its list loads the first time it is opened. Links belong
 * to the project (issue 30, docs/teams.md): in a shared project every editor makes, lists and revokes
 * them (the panel is shown to editors and owners only). */
export function sharePanel(avatar) {
  const list = h("div", { id: "share-list", "aria-live": "polite" });
  const made = h("div", { id: "share-made" });
  const expiry = select("share-expiry", DAYS.map((d) => [String(d), t("share.days", { count: d })]), "30");
  const name = h("input", { id: "share-label", maxlength: 100, autocomplete: "off" });
  const boxes = CHOICES.map((key) => h("input", { type: "checkbox", value: key, checked: key === "attributes" }));
  let loaded = false;

  const load = async (cursor = null) => {
    const query = cursor ? `?limit=20&cursor=${encodeURIComponent(cursor)}` : "?limit=20";
    const page = await call(state.api.get(`/avatars/${avatar.id}/shares${query}`));
    if (!cursor) list.replaceChildren();
    if (!cursor && !page.items.length) list.append(h("p", { class: "empty-line" }, t("share.none")));
    list.append(...page.items.map(row));
    if (page.nextCursor) {
      list.append(h("button", { type: "button", class: "ghost small", onclick: safe(async (event) => {
        event.currentTarget.remove();
        await load(page.nextCursor);
      }) }, t("share.more")));
    }
  };

  const row = (share) => h("div", { class: "share-row row spread", dataset: { shareId: share.id, status: share.status } },
    h("span", {}, h("strong", {}, share.label || t("share.unnamed", { hint: share.tokenHint })), " ",
      h("span", { class: `badge ${share.status === "active" ? "good" : "bad"}` }, t(`share.status_${share.status}`)), " ",
      h("span", { class: "meta" }, t("share.until", { when: dateTime(share.expiresAt) }))),
    share.status === "active" ? h("button", { type: "button", class: "ghost small danger-text", onclick: safe(async (event) => {
      event.currentTarget.disabled = true;
      await call(state.api.delete(`/shares/${share.id}`));
      toast(t("share.revoked"), "ok");
      await load();
    }) }, t("share.revoke")) : null);

  const form = h("form", { class: "stack", id: "share-form", onsubmit: safe(async (event) => {
    event.preventDefault();
    const body = { expiresIn: Number(expiry.value) * 86400,
      fields: boxes.filter((b) => b.checked).map((b) => b.value) };
    if (name.value.trim()) body.label = name.value.trim();
    const created = await call(state.api.post(`/avatars/${avatar.id}/shares`, body));
    const url = shareUrl(created.link);
    const field = h("input", { id: "share-url", readonly: true, value: url, onfocus: (e) => e.target.select() });
    made.replaceChildren(h("p", { class: "note" }, t("share.created")), h("div", { class: "row" }, field,
      h("button", { type: "button", class: "secondary small", id: "share-copy", onclick: async () => {
        try { await navigator.clipboard.writeText(url); toast(t("share.copied"), "ok"); } catch { field.select(); toast(t("share.copy_yourself")); }
      } }, t("share.copy"))));
    name.value = "";
    field.focus();
    await load();
  }) },
    h("label", {}, h("span", {}, t("share.expires")), expiry),
    h("label", {}, h("span", {}, t("share.label")), name),
    h("fieldset", { class: "share-fields" }, h("legend", {}, t("share.fields")),
      boxes.map((box) => h("label", { class: "check" }, box, " ", fieldName(box.value)))),
    h("button", { type: "submit", class: "secondary", id: "share-create" }, t("share.create")));

  return h("details", { class: "share-panel", id: "share-panel", ontoggle: safe(async (event) => {
    if (!event.currentTarget.open || loaded) return;
    loaded = true;
    await load();
  }) }, h("summary", {}, t("share.title")), h("p", { class: "meta" }, t("share.lead")), form, made,
  h("h4", {}, t("share.links")), list);
}
