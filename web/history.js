// An avatar's History (issue 29): its versions newest first — when, who, what changed (each field
// before → after) and why — with Load more and, for editors, Restore; and its lineage: the avatar it
// was made from and the ones made from it. The API is the judge of roles: a viewer's page simply
// draws no Restore button.
import { ATTRIBUTES, call, pretty, safe, state } from "./core.js";
import { dateTime, t } from "./i18n.js";
import { clearDialogError, h, label, rich, toast } from "./ui.js";
import { can } from "./members.js";
import { userId } from "./account.js";

const PAGE = 10;

/** A field's value in words: attribute words translated, persona text as typed, a crop as a phrase. */
function words(key, value) {
  if (value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length)) return t("history.empty");
  if (key === "crop") return t("history.crop_value", { size: String(value.size), x: String(value.x), y: String(value.y) });
  if (Array.isArray(value)) return value.map((v) => (key in ATTRIBUTES ? pretty(v) : String(v))).join(", ");
  return key in ATTRIBUTES ? pretty(value) : String(value);
}

const cause = (v) => (v.cause === "restore" ? t("history.cause_restore", { version: String(v.restoredFrom ?? "?") })
  : v.cause === "suggestion_accept" ? t("history.cause_suggestion") : t("history.cause_edit"));

const who = (by) => (!by ? t("history.by_unknown") : by === userId() ? t("history.by_you") : by);

/** The History section of an avatar's dialog: a <details> that reads the first page when first opened.
 * `project` decides whether Restore shows; `restored(avatar)` is told the avatar after a restore.
 * The node is made once per dialog and kept across redraws (it keeps its open state and its pages);
 * `refresh()` re-reads the first page once it has been opened (after an edit, a restore). */
export function historySection(avatar, project, restored) {
  const editor = can(project, "editor");
  const list = h("ol", { class: "timeline versions", id: "versions", "aria-label": t("history.timeline") });
  const status = h("p", { class: "meta", id: "versions-status", role: "status" });
  const more = h("button", { type: "button", class: "ghost small", id: "versions-more", hidden: true }, t("history.more"));
  const section = h("details", { class: "advanced history", id: "history" },
    h("summary", {}, t("history.title")), status, list, h("div", { class: "row" }, more));
  let cursor = null, loaded = false;

  const row = (v) => {
    const changes = Object.entries(v.changes || {});
    const item = h("li", { class: "version", dataset: { version: String(v.version), cause: v.cause } },
      h("p", { class: "version-head" },
        h("strong", {}, t("history.version", { version: String(v.version) })), " · ",
        h("time", { datetime: v.at }, dateTime(v.at)), " · ",
        h("span", { class: "version-by" }, who(v.by)), " · ",
        h("span", { class: "version-cause" }, cause(v))),
      changes.length ? h("ul", { class: "changes" }, changes.map(([key, c]) => h("li", { class: "change", dataset: { field: key } },
        h("span", { class: "field" }, label(key)), ": ",
        h("span", { class: "before" }, words(key, c.before)), " → ",
        h("span", { class: "after" }, words(key, c.after)))))
        : h("p", { class: "empty-line" }, t("history.no_changes")));
    if (editor) item.append(restoreControl(v, item));
    return item;
  };

  // Confirmed inline: a confirm dialog would replace the avatar's own.
  const restoreControl = (v, item) => {
    const box = h("div", { class: "row restore" });
    const ask = h("button", { type: "button", class: "secondary small restore-version",
      "aria-label": t("history.restore_named", { version: String(v.version) }), onclick: () => {
        const no = h("button", { type: "button", class: "ghost small cancel-restore", onclick: () => { box.replaceChildren(ask); ask.focus(); } }, t("action.cancel"));
        const yes = h("button", { type: "button", class: "small confirm-restore", onclick: safe(async () => {
          yes.disabled = true;  // one click, one request (the API restores once anyway)
          clearDialogError();
          try {
            const out = await call(state.api.post(`/avatars/${avatar.id}/versions/${v.version}/restore`, {}));
            avatar = out.avatar;
            status.textContent = out.version ? t("history.restored", { version: String(v.version) }) : t("history.already");
            toast(status.textContent, "ok");
            restored(out.avatar);
            await section.refresh();
            (list.querySelector(`.version[data-version="${v.version}"] .restore-version`) || section.querySelector("summary")).focus();
          } finally { yes.disabled = false; }
        }) }, t("history.restore_yes"));
        box.replaceChildren(h("span", { class: "meta" }, t("history.restore_question", { version: String(v.version) })), yes, no);
        no.focus();  // the safe choice first
      } }, t("history.restore"));
    box.append(ask);
    return box;
  };

  async function load(first) {
    const query = `limit=${PAGE}${!first && cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const page = await call(state.api.get(`/avatars/${avatar.id}/versions?${query}`));
    if (first) list.replaceChildren();
    list.append(...page.items.map(row));
    cursor = page.nextCursor || null;
    more.hidden = !cursor;
    if (first && !page.items.length) list.append(h("li", { class: "empty-line", id: "no-versions" }, t("history.none")));
    loaded = true;
  }

  more.addEventListener("click", safe(async () => {
    more.disabled = true;
    try { await load(false); } finally { more.disabled = false; }
  }));
  section.addEventListener("toggle", () => { if (section.open && !loaded) safe(() => load(true))(); });
  // One read at a time: an edit and a restore both ask for it, and the two answers would be the same.
  let reading = null;
  section.refresh = () => {
    if (!loaded) return Promise.resolve();
    reading ||= safe(() => load(true))().finally(() => { reading = null; });
    return reading;
  };
  return section;
}

/** Where the avatar came from and what was made from it (`source`, `derivatives` of GET /avatars/{id});
 * `open(id)` shows another avatar in the same dialog. Null when it has neither. */
export function lineageSection(avatar, open) {
  const { source, derivatives } = avatar;
  const items = derivatives?.items || [];
  if (!source && !items.length) return null;
  const link = (other, text) => h("a", { href: `#/projects/${avatar.projectId}/avatars/${other.id}`, dataset: { avatarId: other.id },
    onclick: (event) => { event.preventDefault(); open(other.id); } }, text);
  const parts = [h("h3", {}, t("lineage.title"))];
  if (source) {
    const named = source.kind === "restyle" ? rich("lineage.restyled_from", { name: link(source, `“${source.name}”`) })
      : rich("lineage.variation_of", { name: link(source, `“${source.name}”`) });
    parts.push(h("p", { id: "lineage-source", dataset: { kind: source.kind, exists: String(source.exists) } }, source.exists ? named
      : t(source.kind === "restyle" ? "lineage.restyled_deleted" : "lineage.variation_deleted")));
  }
  if (items.length) {
    parts.push(h("p", { class: "meta" }, t("lineage.derivatives")),
      h("ul", { class: "derivatives", id: "derivatives" }, items.map((d) => h("li", { class: "derivative", dataset: { avatarId: d.id, kind: d.kind } },
        link(d, [d.thumbnailUrl ? h("img", { src: d.thumbnailUrl, alt: "", width: 56, height: 56, loading: "lazy" }) : h("span", { class: "thumb-missing", "aria-hidden": "true" }),
          h("span", {}, d.name)])))));
    if (derivatives.hasMore) parts.push(h("p", { class: "meta", id: "derivatives-more" }, t("lineage.more")));
  }
  return h("section", { class: "lineage", id: "lineage", "aria-label": t("lineage.title") }, parts);
}
