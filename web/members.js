// Team projects (issue 30): a project's Members dialog (add by user id with a role, change a role,
// remove, leave), the projects page's "Shared with me", and what a role may do on the page.
// The page only hides what a role cannot do; the API decides (a 403 `forbidden` is said in words).
import { userId } from "./account.js";
import { call, safe, select, state } from "./core.js";
import { t } from "./i18n.js";
import { clearDialogError, confirmDialog, errorText, h, historySettled, openDialog, showError, toast } from "./ui.js";

export const ROLES = ["viewer", "editor", "owner"];
const MAX_MEMBERS = 50;  // the API's cap (chalicelib/teams/service.py): memberships, the creator not counted
const SHARED_PAGE = 24;
// What a Lumiku user id may be (chalicelib/auth.py): checked here too, so a typo is said before a request.
const USER_ID = /^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$/;

/** The caller's role on `project` (an API without teams answers no myRole: the project is theirs). */
export const roleOf = (project) => (ROLES.includes(project?.myRole) ? project.myRole : "owner");
/** Whether the caller's role on `project` is at least `minimum` (viewer < editor < owner). */
export const can = (project, minimum) => ROLES.indexOf(roleOf(project)) >= ROLES.indexOf(minimum);
export const roleName = (role) => t(`role.${role}`);

/** A member change refused by the API, in words (the codes of chalicelib/teams/service.py). */
function memberError(error) {
  const details = error?.details || {};
  if (error?.code === "validation_error" && Array.isArray(error.details)
    && error.details.some((f) => String(f.field || "").endsWith("userId"))) return t("members.invalid_id");
  if (error?.code === "member_limit") return t("members.limit", { limit: details.limit ?? MAX_MEMBERS });
  if (error?.code === "already_member") {
    return details.role ? t("members.already", { user: details.userId, role: roleName(details.role) })
      : t("members.already_owner", { user: details.userId ?? "" });
  }
  if (error?.code === "home_owner") return t("members.home_owner");
  if (error?.code === "last_owner") return t("members.last_owner");
  if (error?.status === 404 && details.userId) return t("members.not_member", { user: details.userId });
  return errorText(error);
}

/** Await a member change; a refusal is said in the dialog (or `line`), a lost session signs out. */
async function ask(promise, line = null) {
  try {
    return await promise;
  } catch (error) {
    if (error.status === 401) return call(Promise.reject(error));
    const text = memberError(error);
    if (line) { line.textContent = text; line.hidden = false; } else showError(text);
    error.shown = true;
    throw error;
  }
}

// ---- the project page -------------------------------------------------------------------------

/** Under a shared project's title: whose it is and the caller's role (nothing on one's own). */
export function roleLine(project) {
  if (!project.homeUserId) return null;
  return h("p", { class: "meta role-line", id: "my-role", dataset: { role: roleOf(project) } },
    t("members.shared_by", { user: project.homeUserId }), " · ",
    h("span", { class: "badge role-badge", dataset: { role: roleOf(project) } }, t("members.your_role", { role: roleName(roleOf(project)) })));
}

/** The project head's "Members" button: every member may see who else is in the project. */
export function membersButton(project) {
  return h("button", { type: "button", class: "ghost", id: "members-button", "aria-haspopup": "dialog",
    onclick: safe(() => showMembers(project)) }, t("members.button"));
}

/** The Members dialog: the list (the creator first), and for owners the add form, role pickers and
 * Remove; a member who is not the creator can leave. */
export async function showMembers(project) {
  const me = userId();
  const owner = can(project, "owner");
  const list = h("ul", { class: "member-list", id: "member-list", "aria-labelledby": "members-list-title" });
  const counter = h("p", { class: "meta", id: "member-count", "aria-live": "polite" });
  const items = [];

  const draw = () => {
    const members = items.filter((m) => !m.home).length;
    counter.textContent = t("members.count", { count: members, limit: MAX_MEMBERS });
    list.replaceChildren(...items.map(row));
    if (addButton) addButton.disabled = members >= MAX_MEMBERS;
    if (full) full.hidden = members < MAX_MEMBERS;
  };
  const load = async () => {
    const page = await call(state.api.get(`/projects/${project.id}/members`));
    items.splice(0, items.length, ...page.items);
    draw();
  };

  function row(member) {
    const self = member.userId === me;
    const managed = owner && !member.home && !self;
    const name = h("span", { class: "member-name" }, h("code", {}, member.userId),
      self ? h("span", { class: "badge you" }, t("members.you")) : null,
      member.home ? h("span", { class: "meta" }, t("members.creator")) : null);
    let role;
    if (managed) {
      // Arrow keys on a closed select change it one step at a time: the select stays usable (not
      // disabled, which would drop the focus), and the steps go one request after another until the
      // API holds the role last picked.
      let busy = false;
      role = select(`role-${member.userId}`, ROLES.map((r) => [r, roleName(r)]), member.role, {
        class: "member-role", "aria-label": t("members.role_of", { user: member.userId }),
        onchange: safe(async (event) => {
          const picker = event.currentTarget;
          if (busy) return;
          busy = true;
          clearDialogError();
          try {
            while (picker.value !== member.role) {
              const updated = await ask(state.api.put(`/projects/${project.id}/members/${encodeURIComponent(member.userId)}`, { role: picker.value }));
              Object.assign(member, updated);
              picker.closest(".member-row").dataset.role = updated.role;
            }
            toast(t("members.role_changed", { user: member.userId, role: roleName(member.role) }), "ok");
          } catch (error) {
            picker.value = member.role;  // the role the API still holds
            throw error;
          } finally { busy = false; }
        }) });
    } else role = h("span", { class: "badge role-badge", dataset: { role: member.role } }, roleName(member.role));
    const remove = managed ? h("button", { type: "button", class: "ghost small danger-text remove-member",
      "aria-label": t("members.remove_named", { user: member.userId }), onclick: safe(async (event) => {
        const button = event.currentTarget;
        clearDialogError();
        button.disabled = true;
        try {
          await ask(state.api.delete(`/projects/${project.id}/members/${encodeURIComponent(member.userId)}`));
        } catch (error) { button.disabled = false; throw error; }
        const at = items.indexOf(member);
        items.splice(at, 1);
        draw();
        toast(t("members.removed", { user: member.userId }), "ok");
        // The focus stays in the list: the next row's control, else the add field.
        const next = list.children[Math.min(at, list.children.length - 1)];
        (next?.querySelector("select, button") || document.getElementById("member-id"))?.focus();
      }) }, t("members.remove")) : null;
    const leave = self && !member.home ? h("button", { type: "button", class: "ghost small danger-text", id: "leave-project",
      onclick: safe(() => leaveProject(project)) }, t("members.leave")) : null;
    return h("li", { class: "member-row", dataset: { userId: member.userId, role: member.role, home: member.home ? "1" : undefined } },
      name, h("span", { class: "row member-actions" }, role, remove, leave));
  }

  // The add form, for owners: an id and a role; a refusal is said under the field it is about.
  let addButton = null, full = null, form = null;
  if (owner) {
    const id = h("input", { id: "member-id", required: true, maxlength: 128, autocomplete: "off", spellcheck: "false",
      "aria-describedby": "member-id-help member-error" });
    const role = select("member-role", ROLES.map((r) => [r, roleName(r)]), "viewer");
    const error = h("p", { class: "form-error", id: "member-error", role: "alert", hidden: true });
    full = h("p", { class: "note warn", id: "member-full", hidden: true }, t("members.limit", { limit: MAX_MEMBERS }));
    addButton = h("button", { type: "submit", id: "add-member" }, t("members.add"));
    const say = (text) => {
      error.textContent = text;
      error.hidden = !text;
      if (text) id.setAttribute("aria-invalid", "true"); else id.removeAttribute("aria-invalid");
    };
    id.addEventListener("input", () => say(""));
    form = h("form", { class: "stack add-member", id: "add-member-form", onsubmit: safe(async (event) => {
      event.preventDefault();
      if (addButton.disabled) return;
      const value = id.value.trim();
      say("");
      if (!USER_ID.test(value)) { say(t("members.invalid_id")); id.focus(); return; }
      if (value === me) { say(t("members.is_you")); id.focus(); return; }
      addButton.disabled = true;  // one click, one add (the API answers the same add twice as 200 anyway)
      try {
        const added = await ask(state.api.post(`/projects/${project.id}/members`, { userId: value, role: role.value }), error);
        if (!items.some((m) => m.userId === added.userId)) items.push(added);
        id.value = "";
        toast(t("members.added", { user: added.userId, role: roleName(added.role) }), "ok");
      } catch (failure) {
        if (error.textContent) id.setAttribute("aria-invalid", "true");
        id.focus();
        throw failure;
      } finally { draw(); }
      id.focus();
    }) },
    h("div", { class: "toolbar" },
      h("label", { class: "member-id-field" }, h("span", {}, t("members.user_id")), id),
      h("label", {}, h("span", {}, t("members.role")), role),
      addButton),
    h("p", { class: "meta", id: "member-id-help" }, t("members.user_id_help")),
    error, full);
  }

  const body = h("div", { class: "stack", id: "members" },
    h("p", { class: "meta" }, t("members.roles_help")),
    form,
    h("div", { class: "row spread" }, h("h3", { id: "members-list-title" }, t("members.list_title")), counter),
    list);
  openDialog(t("members.title", { name: project.name }), body);
  await load();
  if (form) document.getElementById("member-id")?.focus();
}

/** Leave a shared project (after a confirmation, Cancel focused): the projects page next. Cancelled,
 * the Members dialog comes back. */
async function leaveProject(project) {
  const ok = await confirmDialog(t("members.leave_title", { name: project.name }), t("members.leave_text"), t("members.leave"));
  if (!ok) return showMembers(project);
  await call(state.api.delete(`/projects/${project.id}/members/${encodeURIComponent(userId())}`));
  toast(t("members.left", { name: project.name }), "ok");
  await historySettled();
  location.hash = "#/";
}

// ---- the projects page: "Shared with me" ---------------------------------------------------------

/** The projects other people shared with me, newest membership first, each card with my role and
 * whose it is; paged with the API's cursor ("Load more"). Hidden while there are none. `card` draws a
 * project card (the projects page's), `observe` hands its mosaic to the page's lazy loader. */
export function sharedProjects(card, observe) {
  const grid = h("div", { class: "grid projects", id: "shared-grid" });
  const more = h("button", { type: "button", class: "ghost", id: "shared-more", hidden: true, onclick: safe(() => load()) }, t("action.load_more"));
  const section = h("section", { class: "stack shared", id: "shared", hidden: true, "aria-labelledby": "shared-title" },
    h("div", { class: "page-head" }, h("h2", { id: "shared-title" }, t("shared.title")), h("p", { class: "meta" }, t("shared.lead"))),
    grid, more);
  let cursor = null;
  let loading = false;
  async function load() {
    if (loading) return;
    loading = true;
    try {
      const page = await call(state.api.get(`/projects?shared=true&limit=${SHARED_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`));
      for (const project of page.items) {
        if (grid.querySelector(`[data-project-id="${CSS.escape(project.id)}"]`)) continue;
        const el = card(project);
        el.classList.add("shared-card");
        el.dataset.role = roleOf(project);
        el.querySelector(".project-text")?.append(h("span", { class: "row shared-meta" },
          h("span", { class: "badge role-badge", dataset: { role: roleOf(project) } }, roleName(roleOf(project))),
          h("span", { class: "meta" }, t("shared.by", { user: project.homeUserId }))));
        grid.append(el);
        const mosaic = el.querySelector(".mosaic[data-pending]");
        if (mosaic) observe(mosaic);
      }
      cursor = page.nextCursor;
      more.hidden = !cursor;
      section.hidden = !grid.children.length;
    } finally { loading = false; }
  }
  return { section, load };
}
