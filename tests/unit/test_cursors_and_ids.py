import pytest

from chalicelib.cursors import decode_cursor, encode_cursor
from chalicelib.errors import ValidationError
from chalicelib.ids import is_valid_id, new_id, ulid

KEY = {"PK": {"S": "U#alice"}, "SK": {"S": "P#prj_1"}}


def test_cursor_round_trips_for_same_user_and_scope():
    c = encode_cursor(KEY, secret=b"s", user_id="alice", scope="projects")
    assert "alice" not in c
    assert decode_cursor(c, secret=b"s", user_id="alice", scope="projects") == KEY


@pytest.mark.parametrize("user,scope", [("bob", "projects"), ("alice", "avatars:prj_1")])
def test_cursor_is_bound_to_user_and_scope(user, scope):
    c = encode_cursor(KEY, secret=b"s", user_id="alice", scope="projects")
    with pytest.raises(ValidationError):
        decode_cursor(c, secret=b"s", user_id=user, scope=scope)


def test_tampered_cursor_is_rejected():
    c = encode_cursor(KEY, secret=b"s", user_id="alice", scope="projects")
    tampered = c[:-2] + ("A" if c[-2] != "A" else "B") + c[-1]
    for bad in (tampered, "!!!", "x" * 3000):
        with pytest.raises(ValidationError):
            decode_cursor(bad, secret=b"s", user_id="alice", scope="projects")


def test_no_key_means_no_cursor():
    assert encode_cursor(None, secret=b"s", user_id="a", scope="p") is None
    assert decode_cursor(None, secret=b"s", user_id="a", scope="p") is None


def test_ulids_sort_by_time():
    assert ulid(1_000) < ulid(2_000) < ulid(10**12)
    assert len(ulid()) == 26


def test_ids_are_prefixed_and_validated():
    i = new_id("prj")
    assert is_valid_id(i, "prj") and not is_valid_id(i, "ava") and not is_valid_id("prj_x", "prj")
