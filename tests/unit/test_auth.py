import time

import jwt as pyjwt
import pytest

from chalicelib.auth import InvalidTokenError, issue_token, parse_bearer, verify_token

S = "unit-secret-long-enough-for-hs256-keys"


def test_valid_token_yields_subject():
    assert verify_token(issue_token("alice", secret=S), secret=S).user_id == "alice"


@pytest.mark.parametrize("claims", [{"sub": "alice"}, {"exp": 9999999999}])
def test_token_without_exp_or_sub_is_refused(claims):
    with pytest.raises(InvalidTokenError):
        verify_token(pyjwt.encode(claims, S, algorithm="HS256"), secret=S)


def test_expired_beyond_leeway_is_refused_but_within_leeway_passes():
    now = int(time.time())
    within = issue_token("alice", secret=S, ttl_seconds=-10, now=now)
    assert verify_token(within, secret=S, leeway_seconds=30).user_id == "alice"
    with pytest.raises(InvalidTokenError, match="expired"):
        verify_token(issue_token("alice", secret=S, ttl_seconds=-120, now=now), secret=S, leeway_seconds=30)


def test_not_yet_valid_is_refused():
    tok = pyjwt.encode({"sub": "a", "exp": 9999999999, "nbf": int(time.time()) + 600}, S, algorithm="HS256")
    with pytest.raises(InvalidTokenError, match="not yet valid"):
        verify_token(tok, secret=S)


def test_alg_none_and_other_algorithms_are_refused():
    none_tok = pyjwt.encode({"sub": "a", "exp": 9999999999}, None, algorithm="none")
    hs512 = pyjwt.encode({"sub": "a", "exp": 9999999999}, S, algorithm="HS512")
    for tok in (none_tok, hs512):
        with pytest.raises(InvalidTokenError):
            verify_token(tok, secret=S)


def test_wrong_secret_is_refused():
    with pytest.raises(InvalidTokenError):
        verify_token(issue_token("a", secret="other"), secret=S)


def test_issuer_and_audience_are_checked_when_configured():
    good = issue_token("a", secret=S, issuer="lumiku", audience="avatar-creator")
    assert verify_token(good, secret=S, issuer="lumiku", audience="avatar-creator").user_id == "a"
    for tok in (issue_token("a", secret=S), issue_token("a", secret=S, issuer="x", audience="avatar-creator"),
                issue_token("a", secret=S, issuer="lumiku", audience="other")):
        with pytest.raises(InvalidTokenError):
            verify_token(tok, secret=S, issuer="lumiku", audience="avatar-creator")


def test_subject_with_key_separators_is_refused():
    tok = pyjwt.encode({"sub": "alice#A#x", "exp": 9999999999}, S, algorithm="HS256")
    with pytest.raises(InvalidTokenError, match="subject"):
        verify_token(tok, secret=S)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Token abc", "abc"])
def test_malformed_authorization_headers(header):
    with pytest.raises(InvalidTokenError):
        parse_bearer(header)
