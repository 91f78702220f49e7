"""Avatars API (read, list, edit, delete) through chalice.test.Client over moto."""
from __future__ import annotations

import boto3

from tests.functional.conftest import PREFIX, auth, body
from tests.functional.test_uploads import (
    create_project,
    exists,
    get_avatar,
    project_count,
    request_upload,
    stats,
    upload,
)
from tests.support import images as img
from tests.support.uploads import upload_spec


def small_jpeg():
    return img.jpeg(64, 48)


def test_avatar_json_has_presigned_urls_and_the_documented_fields(client, aws):
    pid = create_project(client)
    avatar = upload(client, aws, pid, small_jpeg(), name="Nova", style="anime", personaAge=30)
    got = get_avatar(client, avatar["id"])
    for field in ("id", "projectId", "name", "status", "sourceType", "imageUrl", "thumbnailUrl", "width", "height",
                  "format", "bytes", "personaName", "personaAge", "personaPersonality", "personaBackground",
                  "gender", "style", "usageCount", "lastUsedAt", "createdAt", "updatedAt"):
        assert field in got, field
    assert (got["projectId"], got["name"], got["style"], got["personaAge"]) == (pid, "Nova", "anime", 30)
    assert (got["sourceType"], got["usageCount"], got["lastUsedAt"]) == ("uploaded", 0, None)
    thumb = boto3.client("s3", region_name="us-east-1")
    # The URL is a presigned GET of the private object: the bucket/key are in it, with a short expiry.
    assert f"thumbs/alice/{avatar['id']}.jpg" in got["thumbnailUrl"] and "X-Amz-Expires=900" in got["thumbnailUrl"]
    assert thumb.head_object(Bucket=aws["UploadBucket"], Key=f"thumbs/alice/{avatar['id']}.jpg")


def test_update_changes_given_fields_and_null_clears(client, aws):
    pid = create_project(client)
    created = request_upload(client, pid, name="Old", gender="female", style="photo", personaName="P",
                             personaPersonality=["calm", "kind"], personaAge=40)
    aid = created["avatar"]["id"]
    resp = client.http.put(f"{PREFIX}/avatars/{aid}", headers=auth(),
                           body=body({"name": "New", "style": None, "personaAge": None, "hairColor": "red"}))
    assert resp.status_code == 200, resp.body
    got = resp.json_body
    assert (got["name"], got["style"], got["personaAge"], got["hairColor"]) == ("New", None, None, "red")
    assert (got["gender"], got["personaName"], got["personaPersonality"]) == ("female", "P", ["calm", "kind"])
    detail = get_avatar(client, aid)
    assert (detail.pop("source"), detail.pop("derivatives")) == (None, {"items": [], "hasMore": False})  # lineage
    assert detail == got
    # Found by its new name, not its old one.
    listed = client.http.get(f"{PREFIX}/projects/{pid}/avatars?q=new", headers=auth()).json_body["items"]
    assert [a["id"] for a in listed] == [aid]


def test_update_rejects_bad_bodies(client, aws):
    pid = create_project(client)
    aid = request_upload(client, pid, name="Keep")["avatar"]["id"]
    for payload in ({"name": None}, {"name": ""}, {"status": "ready"}, {"imageKey": "x"}, {"personaAge": 500},
                    {"personaPersonality": "not a list"}):
        resp = client.http.put(f"{PREFIX}/avatars/{aid}", headers=auth(), body=body(payload))
        assert resp.status_code == 400, (payload, resp.body)
    got = get_avatar(client, aid)
    assert (got["name"], got["status"]) == ("Keep", "uploading")


def test_delete_removes_files_and_decrements_counts(client, aws):
    pid = create_project(client)
    keep = upload(client, aws, pid, small_jpeg(), name="keep")
    doomed = upload(client, aws, pid, small_jpeg(), name="doomed")
    assert project_count(client, pid) == 2
    resp = client.http.delete(f"{PREFIX}/avatars/{doomed['id']}", headers=auth())
    assert resp.status_code == 204
    assert client.http.get(f"{PREFIX}/avatars/{doomed['id']}", headers=auth()).status_code == 404
    assert client.http.delete(f"{PREFIX}/avatars/{doomed['id']}", headers=auth()).status_code == 404
    assert not exists(aws, f"images/alice/{doomed['id']}") and not exists(aws, f"thumbs/alice/{doomed['id']}")
    assert exists(aws, f"images/alice/{keep['id']}") and exists(aws, f"thumbs/alice/{keep['id']}")
    assert project_count(client, pid) == 1
    s = stats(aws)
    assert (s["totalAvatars"], s["avatarsUploaded"]) == (1, 1)


def test_deleting_an_uploading_or_rejected_avatar_leaves_counts_alone(client, aws):
    pid = create_project(client)
    upload(client, aws, pid, small_jpeg())
    pending = request_upload(client, pid)["avatar"]
    rejected = upload(client, aws, pid, img.text_as_png(), contentType="image/png")
    for avatar in (pending, rejected):
        assert client.http.delete(f"{PREFIX}/avatars/{avatar['id']}", headers=auth()).status_code == 204
    assert project_count(client, pid) == 1
    assert stats(aws)["totalAvatars"] == 1


def test_other_users_avatar_is_404_on_every_route(client, aws):
    pid = create_project(client)
    avatar = upload(client, aws, pid, small_jpeg(), name="Mine")
    aid = avatar["id"]
    calls = [
        ("get", f"{PREFIX}/avatars/{aid}", None),
        ("put", f"{PREFIX}/avatars/{aid}", {"name": "stolen"}),
        ("delete", f"{PREFIX}/avatars/{aid}", None),
        ("get", f"{PREFIX}/projects/{pid}/avatars", None),
        ("post", f"{PREFIX}/projects/{pid}/avatars/upload", upload_spec()),
        ("post", f"{PREFIX}/projects/{pid}/avatars/uploads", {"files": [upload_spec()]}),
    ]
    for method, url, payload in calls:
        kwargs = {"body": body(payload)} if payload is not None else {}
        resp = getattr(client.http, method)(url, headers=auth("bob"), **kwargs)
        assert resp.status_code == 404, (method, url, resp.body)
        assert resp.json_body["error"]["code"] == "not_found"
    got = get_avatar(client, aid)
    assert (got["name"], got["status"]) == ("Mine", "ready")
    assert exists(aws, f"images/alice/{aid}.jpg")
    assert project_count(client, pid) == 1


def test_routes_need_a_token(client, aws):
    for method, url in (("get", f"{PREFIX}/avatars/ava_x"), ("get", f"{PREFIX}/projects/p/avatars"),
                        ("post", f"{PREFIX}/projects/p/avatars/upload"), ("delete", f"{PREFIX}/avatars/ava_x")):
        assert getattr(client.http, method)(url).status_code == 401, (method, url)


def test_list_of_missing_project_is_404(client, aws):
    resp = client.http.get(f"{PREFIX}/projects/prj_nope/avatars", headers=auth())
    assert resp.status_code == 404


def test_list_filters_and_search(client, aws):
    pid = create_project(client)
    other = create_project(client, name="Other")
    upload(client, aws, pid, small_jpeg(), name="Alpha Star", gender="female", style="anime")
    upload(client, aws, pid, small_jpeg(), name="Beta", gender="male", style="anime")
    upload(client, aws, pid, small_jpeg(), name="Gamma star", gender="female", style="photo")
    request_upload(client, pid, name="Pending star", gender="female")
    upload(client, aws, other, small_jpeg(), name="Elsewhere star", gender="female")

    def names(query=""):
        resp = client.http.get(f"{PREFIX}/projects/{pid}/avatars{query}", headers=auth())
        assert resp.status_code == 200, resp.body
        return [a["name"] for a in resp.json_body["items"]]

    assert names() == ["Pending star", "Gamma star", "Beta", "Alpha Star"]  # newest first
    assert names("?gender=female") == ["Pending star", "Gamma star", "Alpha Star"]
    assert names("?style=anime") == ["Beta", "Alpha Star"]
    assert names("?gender=female&style=anime") == ["Alpha Star"]
    assert names("?status=uploading") == ["Pending star"]
    assert names("?status=ready&q=STAR") == ["Gamma star", "Alpha Star"]
    assert names("?sourceType=uploaded&q=beta") == ["Beta"]
    assert names("?sourceType=text_to_image") == []
    for bad in ("?sourceType=nope", "?status=done", "?limit=0", "?limit=101", "?cursor=garbage"):
        assert client.http.get(f"{PREFIX}/projects/{pid}/avatars{bad}", headers=auth()).status_code == 400, bad


def test_list_paginates_with_cursor_bound_to_user_and_project(client, aws):
    pid = create_project(client)
    other = create_project(client, name="Other")
    for i in range(5):
        request_upload(client, pid, name=f"a{i}")
    seen, cursor = [], None
    while True:
        url = f"{PREFIX}/projects/{pid}/avatars?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.http.get(url, headers=auth()).json_body
        assert len(page["items"]) <= 2
        seen += [a["name"] for a in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
        assert "U#" not in cursor
    assert seen == [f"a{i}" for i in reversed(range(5))]

    first = client.http.get(f"{PREFIX}/projects/{pid}/avatars?limit=1", headers=auth()).json_body["nextCursor"]
    assert client.http.get(f"{PREFIX}/projects/{other}/avatars?cursor={first}", headers=auth()).status_code == 400
    # The first page embedded in GET /projects/{id} continues on the list route.
    detail = client.http.get(f"{PREFIX}/projects/{pid}", headers=auth()).json_body
    assert detail["avatars"]["nextCursor"] is None and len(detail["avatars"]["items"]) == 5


def test_filtered_page_is_bounded_and_continues_with_cursor(client, aws):
    pid = create_project(client)
    for i in range(12):
        request_upload(client, pid, name=f"n{i}", gender="male" if i % 6 else "female")
    found, cursor, calls = [], None, 0
    while True:
        url = f"{PREFIX}/projects/{pid}/avatars?limit=2&gender=female" + (f"&cursor={cursor}" if cursor else "")
        page = client.http.get(url, headers=auth()).json_body
        calls += 1
        found += [a["name"] for a in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert found == ["n6", "n0"]
    assert calls >= 2  # a sparse filter does not read the whole project in one request


def test_openapi_documents_avatar_routes(client, aws):
    spec = client.http.get(f"{PREFIX}/openapi.json").json_body
    for path in ("/projects/{project_id}/avatars/upload", "/projects/{project_id}/avatars/uploads",
                 "/projects/{project_id}/avatars", "/avatars/{avatar_id}"):
        assert PREFIX + path in spec["paths"], path
    assert {"UploadRequest", "UploadCreated", "AvatarUpdate"} <= set(spec["components"]["schemas"])


def test_avatar_reads_are_a_fixed_number_of_dynamodb_calls(client, aws):
    from tests.support.ddb_calls import DynamoDBCalls

    pid = create_project(client)
    for i in range(8):
        request_upload(client, pid, name=f"n{i}", gender="male")
    aid = request_upload(client, pid, name="target")["avatar"]["id"]
    with DynamoDBCalls() as calls:
        get_avatar(client, aid)
    # still uploading (what the page polls): no derivatives to look for; a ready one adds their Query
    # (tests/functional/test_versions.py)
    assert calls.names == ["GetItem"]
    with DynamoDBCalls() as calls:
        client.http.get(f"{PREFIX}/projects/{pid}/avatars?limit=50", headers=auth())
    assert calls.names == ["GetItem", "Query"]
    with DynamoDBCalls() as calls:  # a filter matching nothing: still at most 3 Queries, not a full read
        client.http.get(f"{PREFIX}/projects/{pid}/avatars?limit=2&gender=female", headers=auth())
    assert calls.names == ["GetItem", "Query", "Query", "Query"]
