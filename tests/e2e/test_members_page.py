"""Team projects on the page (issue 30 item 5), two or three people in their own browser contexts
against the local stack: the Members dialog (add by id with a role, change a role, remove, leave),
"Shared with me" with the role badge, and the controls each role sees. The API decides: a page
drawn for an editor who has since become a viewer is refused with words, not a silent failure."""
from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from tests.e2e.conftest import create_project, sign_in, uploaded_avatar
from tests.support.browser import screenshot

API = "/api/apps/avatar-creator"
EDIT_CONTROLS = ("#upload-button", "#generate-button", "#dropzone", "#rename-project", "#delete-project")


def person(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def api(local_stack, method: str, path: str, user: str, body=None):
    return local_stack.request(method, API + path, body, token=local_stack.token(user))


def project_id(page) -> str:
    return re.search(r"#/projects/([\w-]+)", page.url).group(1)


def open_members(page):
    page.click("#members-button")
    expect(page.locator("#members")).to_be_visible()
    expect(page.locator("#member-count")).not_to_be_empty()  # the list has been read


def member_row(page, who: str):
    return page.locator(f'.member-row[data-user-id="{who}"]')


def close(page) -> None:
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)


def test_owner_adds_a_viewer_promotes_them_to_editor_then_removes_them(new_page, user, tmp_path, local_stack):
    owner, member = new_page(), new_page()
    budi = person("budi")
    sign_in(owner, user)
    create_project(owner, "Kampanye Lebaran")
    pid = project_id(owner)
    uploaded_avatar(owner, tmp_path, "maya")

    sign_in(member, budi)
    expect(member.locator("#my-id")).to_have_text(budi)  # the id the member sends the owner
    expect(member.locator("#shared")).to_be_hidden()  # nothing shared yet: no empty section

    # The owner adds Budi as a viewer, by his id.
    open_members(owner)
    expect(owner.locator(".member-row")).to_have_count(1)  # the creator, marked as you
    expect(member_row(owner, user)).to_contain_text("You")
    expect(member_row(owner, user).locator("select, button")).to_have_count(0)  # the creator stays an owner
    owner.fill("#member-id", budi)
    expect(owner.locator("#member-role")).to_have_value("viewer")
    owner.click("#add-member")
    expect(member_row(owner, budi).locator("select")).to_have_value("viewer")
    expect(owner.locator("#member-count")).to_contain_text("1 member added")
    expect(owner.locator("#member-id")).to_have_value("")
    expect(owner.locator("#member-id")).to_be_focused()
    screenshot(owner, "30-members-dialog")
    close(owner)

    # Budi finds it under "Shared with me", with his role, and sees no control a viewer cannot use.
    member.reload()
    card = member.locator("#shared-grid .project-card", has_text="Kampanye Lebaran")
    expect(card).to_have_count(1)
    expect(card.locator(".role-badge")).to_have_text("Viewer")
    expect(card).to_contain_text(f"Shared by {user}")
    expect(member.locator("#project-grid .project-card")).to_have_count(0)  # not one of his own projects
    screenshot(member, "30-shared-with-me")
    card.click()
    expect(member.locator("#project-title")).to_have_text("Kampanye Lebaran")
    expect(member.locator("#my-role")).to_contain_text("Your role: Viewer")
    face = member.locator('.avatar-card[data-status="ready"]', has_text="maya")
    expect(face).to_have_count(1)
    for control in EDIT_CONTROLS:
        expect(member.locator(control)).to_have_count(0)
    expect(face.get_by_role("button", name="Delete maya")).to_have_count(0)
    expect(face.get_by_role("button", name="Edit maya")).to_have_count(0)
    screenshot(member, "30-viewer-project")
    face.locator("button.thumb").click()
    expect(member.locator("#download-avatar")).to_be_visible()
    for control in ("#delete-avatar", "#edit-avatar", "#restyle-avatar", "#make-variations", "#share-panel"):
        expect(member.locator(control)).to_have_count(0)
    close(member)
    open_members(member)  # a viewer sees who is in the project, and may only leave
    expect(member.locator(".member-row")).to_have_count(2)
    expect(member.locator("#add-member-form, .member-row select, .remove-member")).to_have_count(0)
    expect(member.locator("#leave-project")).to_be_visible()
    close(member)

    # Promoted to editor, Budi uploads and edits.
    open_members(owner)
    owner.select_option(f'.member-row[data-user-id="{budi}"] select', "editor")
    expect(owner.locator(".toast", has_text=f"{budi} is now: Editor")).to_be_visible()
    close(owner)
    assert {m["userId"]: m["role"] for m in api(local_stack, "GET", f"/projects/{pid}/members", user).json()["items"]}[budi] == "editor"
    member.reload()
    expect(member.locator("#my-role")).to_contain_text("Your role: Editor")
    expect(member.locator("#upload-button")).to_be_visible()
    expect(member.locator("#rename-project")).to_have_count(0)  # an editor does not manage the project
    expect(member.locator("#delete-project")).to_have_count(0)
    uploaded_avatar(member, tmp_path, "budi-foto")
    member.locator(".avatar-card", has_text="maya").get_by_role("button", name="Edit maya").click()
    member.fill("#edit-name", "Maya Sari")
    member.click("#save-avatar")
    expect(member.locator("#dialog-title")).to_have_text("Maya Sari")
    # An editor makes share links and revokes them: links belong to the project (docs/teams.md).
    member.locator("#share-panel > summary").click()
    member.click("#share-create")
    expect(member.locator(".share-row")).to_have_count(1)
    member.locator(".share-row").get_by_role("button", name="Revoke").click()
    expect(member.locator('.share-row[data-status="revoked"]')).to_have_count(1)
    close(member)
    open_members(member)
    expect(member.locator("#add-member-form, .member-row select, .remove-member")).to_have_count(0)
    close(member)
    owner.reload()  # the member's work is the project's: the owner sees both
    expect(owner.locator(".avatar-card h3", has_text="budi-foto")).to_have_count(1)
    expect(owner.locator(".avatar-card h3", has_text="Maya Sari")).to_have_count(1)

    # Removed, Budi's next load answers "not found", and the project leaves his list.
    open_members(owner)
    member_row(owner, budi).get_by_role("button", name=f"Remove {budi} from the project").click()
    expect(member_row(owner, budi)).to_have_count(0)
    expect(owner.locator("#member-count")).to_contain_text("0 members added")
    close(owner)
    member.reload()
    expect(member.locator(".empty-state h2")).to_have_text("This project does not exist, or you are not (or no longer) one of its members.")
    member.click(".empty-state a")
    expect(member.locator("#create-project")).to_be_visible()
    expect(member.locator("#shared")).to_be_hidden()


def test_a_page_drawn_for_an_editor_is_refused_in_words_once_the_role_is_lowered(new_page, user, tmp_path, local_stack):
    owner, member = new_page(), new_page()
    sari = person("sari")
    sign_in(owner, user)
    create_project(owner, "Katalog")
    pid = project_id(owner)
    uploaded_avatar(owner, tmp_path, "rina")
    assert api(local_stack, "POST", f"/projects/{pid}/members", user, {"userId": sari, "role": "editor"}).status == 201
    sign_in(member, sari)
    member.goto(f"/#/projects/{pid}")
    face = member.locator(".avatar-card", has_text="rina")
    expect(face.get_by_role("button", name="Delete rina")).to_be_visible()
    # Meanwhile the owner makes Sari a viewer: her page still offers Delete, the API refuses it.
    assert api(local_stack, "PUT", f"/projects/{pid}/members/{sari}", user, {"role": "viewer"}).status == 200
    face.get_by_role("button", name="Delete rina").click()
    member.click("#confirm-yes")
    expect(member.locator(".toast.error")).to_have_text("Your role in this project does not allow this — ask one of its owners.")
    expect(face).to_have_count(1)
    assert api(local_stack, "GET", f"/projects/{pid}/avatars", user).json()["items"][0]["name"] == "rina"


def test_a_member_leaves_after_confirming_and_shared_projects_page_with_load_more(new_page, user, local_stack):
    member = new_page()
    owner = person("agency")
    # 25 projects shared with the member: one more than a page.
    ids = []
    for n in range(25):
        project = api(local_stack, "POST", "/projects", owner, {"name": f"Brief {n:02d}"}).json()
        assert api(local_stack, "POST", f"/projects/{project['id']}/members", owner,
                   {"userId": user, "role": "editor" if n == 24 else "viewer"}).status == 201
        ids.append(project["id"])
    sign_in(member, user)
    shared = member.locator("#shared-grid .project-card")
    expect(shared).to_have_count(24)
    expect(shared.first).to_contain_text("Brief 24")  # newest membership first
    expect(shared.first.locator(".role-badge")).to_have_text("Editor")
    member.click("#shared-more")
    expect(shared).to_have_count(25)
    expect(member.locator("#shared-more")).to_be_hidden()

    shared.first.click()
    expect(member.locator("#project-title")).to_have_text("Brief 24")
    expect(member.locator("#no-avatars")).to_be_visible()
    open_members(member)
    expect(member_row(member, owner)).to_contain_text("Creator")
    member.click("#leave-project")
    expect(member.locator("#confirm-no")).to_be_focused()  # Enter out of habit does not leave
    member.click("#confirm-no")
    expect(member.locator("#members")).to_be_visible()  # cancelled: back to the members
    member.click("#leave-project")
    member.click("#confirm-yes")
    expect(member.locator(".toast", has_text="You left “Brief 24”")).to_be_visible()
    expect(member.locator("#create-project")).to_be_visible()
    expect(shared).to_have_count(24)
    expect(member.locator("#shared-grid .project-card", has_text="Brief 24")).to_have_count(0)
    members = api(local_stack, "GET", f"/projects/{ids[24]}/members", owner).json()["items"]
    assert [m["userId"] for m in members] == [owner]


def test_member_errors_are_said_under_the_field(new_page, user, local_stack):
    owner = new_page()
    sign_in(owner, user)
    create_project(owner, "Tim kreatif")
    pid = project_id(owner)
    open_members(owner)
    owner.fill("#member-id", "not an id!")
    owner.click("#add-member")
    expect(owner.locator("#member-error")).to_contain_text("That is not a Lumiku user id")
    expect(owner.locator("#member-id")).to_have_attribute("aria-invalid", "true")
    owner.fill("#member-id", user)
    expect(owner.locator("#member-error")).to_be_hidden()  # typing clears the old error
    owner.click("#add-member")
    expect(owner.locator("#member-error")).to_have_text("That is your own id — you are already in this project.")
    dewi = person("dewi")
    owner.fill("#member-id", dewi)
    owner.click("#add-member")
    expect(member_row(owner, dewi)).to_have_count(1)
    owner.fill("#member-id", dewi)
    owner.select_option("#member-role", "editor")
    owner.click("#add-member")  # the API's refusal (409 already_member), in words
    expect(owner.locator("#member-error")).to_have_text(f"{dewi} is already a member, as Viewer — change their role in the list instead.")
    close(owner)

    # 49 members: the page still offers Add; a 50th added elsewhere meanwhile makes the API refuse the next.
    for n in range(48):
        assert api(local_stack, "POST", f"/projects/{pid}/members", user, {"userId": f"crew-{n}", "role": "viewer"}).status == 201
    open_members(owner)
    expect(owner.locator("#member-count")).to_contain_text("49 members added (at most 50)")
    assert api(local_stack, "POST", f"/projects/{pid}/members", user, {"userId": "crew-late", "role": "viewer"}).status == 201
    owner.fill("#member-id", person("one-too-many"))
    owner.click("#add-member")
    expect(owner.locator("#member-error")).to_have_text("A project has at most 50 members — remove someone first.")
    expect(owner.locator("#member-count")).to_contain_text("49 members added")  # the list is as the page read it
    close(owner)
    open_members(owner)  # read again: full, Add is off and says why
    expect(owner.locator("#member-count")).to_contain_text("50 members added")
    expect(owner.locator("#add-member")).to_be_disabled()
    expect(owner.locator("#member-full")).to_be_visible()


def test_the_members_dialog_works_by_keyboard_alone(new_page, user, local_stack):
    owner = new_page()
    sign_in(owner, user)
    create_project(owner, "Papan cerita")
    pid = project_id(owner)
    owner.focus("#members-button")
    owner.keyboard.press("Enter")
    expect(owner.locator("#member-id")).to_be_focused()  # the dialog opens on the id field
    rudi = person("rudi")
    owner.keyboard.type(rudi)
    owner.keyboard.press("Enter")
    picker = member_row(owner, rudi).locator("select")
    expect(picker).to_have_value("viewer")
    expect(owner.locator("#member-id")).to_be_focused()  # ready for the next person
    picker.focus()
    owner.keyboard.press("ArrowDown")  # a closed select steps: viewer → editor → owner, a request each
    owner.keyboard.press("ArrowDown")
    expect(picker).to_be_focused()  # the select stays usable while its requests run
    expect(owner.locator(".toast", has_text=f"{rudi} is now: Owner")).to_be_visible()
    expect(member_row(owner, rudi)).to_have_attribute("data-role", "owner")
    roles = {m["userId"]: m["role"] for m in api(local_stack, "GET", f"/projects/{pid}/members", user).json()["items"]}
    assert roles[rudi] == "owner"
    member_row(owner, rudi).locator(".remove-member").focus()
    owner.keyboard.press("Enter")
    expect(member_row(owner, rudi)).to_have_count(0)
    expect(owner.locator("#member-id")).to_be_focused()  # the last row gone: back to the add field


def test_an_editor_generates_from_a_preset_in_a_shared_project(new_page, user, local_stack):
    """POST /presets/{id}/generate reaches only one's own projects: in a shared project the page sends
    the preset's fields through the project's generate route, and the result lands in the project."""
    member = new_page()
    owner = person("studio")
    project = api(local_stack, "POST", "/projects", owner, {"name": "Lookbook"}).json()
    assert api(local_stack, "POST", f"/projects/{project['id']}/members", owner, {"userId": user, "role": "editor"}).status == 201
    sign_in(member, user)
    member.locator("#shared-grid .project-card", has_text="Lookbook").click()
    member.click("#generate-button")
    preset = member.locator("#generate-panel .preset").first
    expect(preset.locator("img")).to_be_visible(timeout=20_000)
    name = preset.locator("strong").inner_text()
    preset.locator(".generate-now").click()
    expect(member.locator(".toast.error")).to_have_count(0)
    expect(member.locator('#avatar-grid .avatar-card[data-status="ready"]', has_text=name)).to_have_count(1, timeout=30_000)
    items = api(local_stack, "GET", f"/projects/{project['id']}/avatars", owner).json()["items"]
    assert [a["name"] for a in items] == [name]
