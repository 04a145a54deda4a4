"""The typed environment readers name the variable and the expected form on a bad value."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_float, env_int, env_list, env_str, env_url


def test_a_boolean_accepts_the_usual_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw, expected in [
        ("true", True),
        ("1", True),
        ("YES", True),
        ("on", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("off", False),
    ]:
        monkeypatch.setenv("SOME_FLAG", raw)
        assert env_bool("SOME_FLAG", not expected) is expected


def test_a_malformed_boolean_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match=r"SOME_FLAG must be a boolean .*'maybe'"):
        env_bool("SOME_FLAG", False)


def test_an_unset_variable_takes_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOME_NUMBER", raising=False)
    assert env_int("SOME_NUMBER", 7) == 7
    assert env_str("SOME_NUMBER", "x") == "x"
    assert env_list("SOME_NUMBER", ["a"]) == ["a"]


def test_a_required_text_refuses_an_empty_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_TEXT", "  ")
    with pytest.raises(ImproperlyConfigured, match="SOME_TEXT must be set"):
        env_str("SOME_TEXT", required=True)


def test_an_integer_is_checked_for_form_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_NUMBER", "ten")
    with pytest.raises(ImproperlyConfigured, match="SOME_NUMBER must be a whole number"):
        env_int("SOME_NUMBER", 1)
    monkeypatch.setenv("SOME_NUMBER", "0")
    with pytest.raises(ImproperlyConfigured, match="SOME_NUMBER must be at least 1"):
        env_int("SOME_NUMBER", 1, minimum=1)
    monkeypatch.setenv("SOME_NUMBER", "70000")
    with pytest.raises(ImproperlyConfigured, match="SOME_NUMBER must be at most 65535"):
        env_int("SOME_NUMBER", 1, maximum=65535)


def test_a_float_is_checked_for_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_SECONDS", "1.5")
    assert env_float("SOME_SECONDS", 3.0) == 1.5
    monkeypatch.setenv("SOME_SECONDS", "soon")
    with pytest.raises(ImproperlyConfigured, match="SOME_SECONDS must be a number"):
        env_float("SOME_SECONDS", 3.0)


def test_a_list_drops_blank_items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_HOSTS", " a.example , ,b.example,")
    assert env_list("SOME_HOSTS", []) == ["a.example", "b.example"]


def test_a_choice_lists_the_allowed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_MODE", "gpt")
    with pytest.raises(ImproperlyConfigured, match="SOME_MODE must be one of embedded, openai; got 'gpt'"):
        env_choice("SOME_MODE", "embedded", ["embedded", "openai"])


def test_a_url_needs_the_scheme_and_a_numeric_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_URL", "mysql://db/steward")
    with pytest.raises(ImproperlyConfigured, match=r"SOME_URL must be a URL starting with postgresql://"):
        env_url("SOME_URL", None, schemes=["postgresql"])
    monkeypatch.setenv("SOME_URL", "postgresql://db:port/steward")
    with pytest.raises(ImproperlyConfigured, match="SOME_URL has a port that is not a number"):
        env_url("SOME_URL", None, schemes=["postgresql"])


def test_a_url_error_never_prints_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_URL", "mysql://steward:s3cret@db/steward")
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_url("SOME_URL", None, schemes=["postgresql"])
    assert "s3cret" not in str(excinfo.value)
    assert ":***@" in str(excinfo.value)
