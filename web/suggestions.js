// Attribute suggestions of an uploaded avatar (issue 30): chips to accept or dismiss, one by one or all.
// Nothing becomes the avatar's until accepted, and an accepted value never replaces one the person set.
import { call, pretty, safe, state } from "./core.js";
import { t } from "./i18n.js";
import { h, label, toast } from "./ui.js";

/** The panel for `avatar` (null when it has none to show); `changed(updated)` redraws the dialog. */
export function suggestionPanel(avatar, changed) {
  const status = avatar.suggestionStatus;
  if (!status) return null;
  const box = (...children) => h("section", { class: "suggestions", id: "suggestions", "aria-labelledby": "suggestions-title" },
    h("h3", { id: "suggestions-title" }, t("suggest.title")), ...children);
  if (status === "pending") return box(h("p", { class: "meta", id: "suggestions-pending" }, t("suggest.pending")));
  if (status === "unavailable") return box(h("p", { class: "meta", id: "suggestions-unavailable" }, t("suggest.unavailable")));
  const entries = Object.entries(avatar.suggestions || {});
  if (!entries.length) return null;
  const answer = (promise, message) => safe(async () => {
    const updated = await call(promise());
    toast(message, "ok");
    changed(updated);
  });
  const path = `/avatars/${avatar.id}/suggestions`;
  return box(
    h("p", { class: "meta" }, t("suggest.hint")),
    h("ul", { class: "chips suggestion-chips" }, entries.map(([attribute, { value, score }]) => {
      const words = t("suggest.chip", { attribute: label(attribute), value: pretty(value) });
      const kept = avatar[attribute] ? t("suggest.kept", { value: pretty(avatar[attribute]) }) : null;
      return h("li", { class: "suggestion", dataset: { attribute } },
        h("span", { class: "chip-text", title: t("suggest.score", { percent: Math.round(score * 100) }) }, words),
        kept ? h("span", { class: "meta" }, " ", kept) : null,
        h("button", { type: "button", class: "chip", dataset: { accept: attribute }, "aria-label": t("suggest.accept_one", { what: words }),
          onclick: answer(() => state.api.post(`${path}/accept`, { attributes: [attribute] }), t("suggest.accepted")) }, t("suggest.accept")),
        h("button", { type: "button", class: "chip", dataset: { dismiss: attribute }, "aria-label": t("suggest.dismiss_one", { what: words }),
          onclick: answer(() => state.api.delete(`${path}/${attribute}`), t("suggest.dismissed")) }, t("suggest.dismiss")));
    })),
    h("div", { class: "row" },
      h("button", { type: "button", class: "secondary", id: "accept-suggestions",
        onclick: answer(() => state.api.post(`${path}/accept`, {}), t("suggest.accepted")) }, t("suggest.accept_all")),
      h("button", { type: "button", class: "ghost", id: "dismiss-suggestions",
        onclick: answer(() => state.api.delete(path), t("suggest.dismissed")) }, t("suggest.dismiss_all"))));
}

/** The upload opt-in for the two person attributes (shown only where suggestions run): unticked, the
 * model is never asked about gender or age; visual attributes are suggested either way. */
export function personOptIn() {
  if (!state.health?.attributeSuggestions) return null;
  return h("label", { class: "check suggest-opt-in", id: "suggest-person-label" },
    h("input", { type: "checkbox", id: "suggest-person" }), h("span", {}, t("suggest.person_opt_in")));
}

/** What an upload request adds for the opt-in. */
export const personAsked = () => (document.getElementById("suggest-person")?.checked ? { suggest: ["gender", "ageRange"] } : {});
