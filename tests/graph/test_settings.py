"""GraphSettings.from_env: every variable, defaults, and one clear line naming the variable on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph.settings import GraphSettings, SettingsError

from .cert_helpers import make_certificate

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def _pem(tmp_path: Path, *, key: bool = True, cert: bool = True) -> Path:
    key_pem, cert_pem, _ = make_certificate()
    path = tmp_path / "client.pem"
    path.write_text((key_pem if key else "") + (cert_pem if cert else ""))
    return path


def base_env(**extra: str) -> dict[str, str]:
    env = {"GRAPH_TENANT_ID": TENANT, "GRAPH_CLIENT_ID": CLIENT, "GRAPH_CLIENT_SECRET": "s3cret~value"}
    env.update(extra)
    return env


def test_minimal_secret_settings_get_public_cloud_defaults() -> None:
    s = GraphSettings.from_env(base_env())
    assert s.tenant_id == TENANT and s.client_id == CLIENT
    assert s.client_secret == "s3cret~value" and s.client_certificate is None
    assert s.authority_host == "https://login.microsoftonline.com"
    assert s.authority == f"https://login.microsoftonline.com/{TENANT}"
    assert s.base_url == "https://graph.microsoft.com/v1.0"
    assert s.scope == "https://graph.microsoft.com/.default"
    assert s.mail_sender is None and s.default_region is None and s.ca_file is None


def test_secret_never_appears_in_repr() -> None:
    s = GraphSettings.from_env(base_env())
    assert "s3cret~value" not in repr(s)


def test_every_variable_is_read(tmp_path: Path) -> None:
    ca = _pem(tmp_path, key=False)
    s = GraphSettings.from_env(
        base_env(
            GRAPH_AUTHORITY_HOST="https://login.microsoftonline.us/",
            GRAPH_BASE_URL="https://graph.microsoft.us/v1.0/",
            MAIL_SENDER="helpdesk@contoso.com",
            SERVICE_DESK_DISPLAY_NAME="Contoso IT",
            SERVICE_DESK_EMAIL="it@contoso.com",
            SERVICE_DESK_PHONE="+49 30 1234567",
            SERVICE_DESK_PORTAL_URL="https://it.contoso.com/portal?x=1",
            PHONE_DEFAULT_REGION="de",
            SSL_CERT_FILE=str(ca),
        )
    )
    assert s.authority_host == "https://login.microsoftonline.us"
    assert s.base_url == "https://graph.microsoft.us/v1.0"
    assert s.scope == "https://graph.microsoft.us/.default"  # derived from the base URL's origin
    assert s.mail_sender == "helpdesk@contoso.com"
    assert s.service_desk.display_name == "Contoso IT"
    assert s.service_desk.email == "it@contoso.com"
    assert s.service_desk.phone == "+49 30 1234567"
    assert s.service_desk.portal_url == "https://it.contoso.com/portal?x=1"
    assert s.default_region == "DE"
    assert s.ca_file == str(ca)


def test_the_409_read_back_window_defaults_above_the_runbooks_5_seconds_and_can_be_set() -> None:
    assert GraphSettings.from_env(base_env()).conflict_readback_seconds == 8.0
    assert (
        GraphSettings.from_env(base_env(CONFLICT_READBACK_SECONDS="12.5")).conflict_readback_seconds == 12.5
    )
    assert GraphSettings.from_env(base_env(CONFLICT_READBACK_SECONDS=" 0 ")).conflict_readback_seconds == 0.0


def test_explicit_scope_wins() -> None:
    s = GraphSettings.from_env(base_env(GRAPH_SCOPE="https://graph.microsoft.com/.default"))
    assert s.scope == "https://graph.microsoft.com/.default"


def test_ca_file_falls_back_to_requests_ca_bundle_and_prefers_ssl_cert_file(tmp_path: Path) -> None:
    first = _pem(tmp_path, key=False)
    second = tmp_path / "other.pem"
    second.write_bytes(first.read_bytes())
    assert GraphSettings.from_env(base_env(REQUESTS_CA_BUNDLE=str(second))).ca_file == str(second)
    both = base_env(SSL_CERT_FILE=str(first), REQUESTS_CA_BUNDLE=str(second))
    assert GraphSettings.from_env(both).ca_file == str(first)


def test_certificate_credential_is_accepted(tmp_path: Path) -> None:
    pem = _pem(tmp_path)
    env = base_env(GRAPH_CLIENT_CERTIFICATE=str(pem))
    del env["GRAPH_CLIENT_SECRET"]
    s = GraphSettings.from_env(env)
    assert s.client_certificate == str(pem) and s.client_secret is None and s.uses_certificate


def test_tenant_may_be_a_domain_name() -> None:
    assert GraphSettings.from_env(base_env(GRAPH_TENANT_ID="contoso.onmicrosoft.com")).tenant_id == (
        "contoso.onmicrosoft.com"
    )


def _error(env: dict[str, str]) -> SettingsError:
    with pytest.raises(SettingsError) as info:
        GraphSettings.from_env(env)
    message = str(info.value)
    assert "\n" not in message
    return info.value


@pytest.mark.parametrize("missing", ["GRAPH_TENANT_ID", "GRAPH_CLIENT_ID"])
def test_missing_required_variable_is_named(missing: str) -> None:
    env = base_env()
    del env[missing]
    err = _error(env)
    assert err.variable == missing and str(err).startswith(missing)


def test_blank_value_counts_as_missing() -> None:
    assert _error(base_env(GRAPH_TENANT_ID="   ")).variable == "GRAPH_TENANT_ID"


def test_neither_secret_nor_certificate_is_refused() -> None:
    env = base_env()
    del env["GRAPH_CLIENT_SECRET"]
    err = _error(env)
    assert "GRAPH_CLIENT_CERTIFICATE" in str(err)


def test_both_secret_and_certificate_is_refused(tmp_path: Path) -> None:
    err = _error(base_env(GRAPH_CLIENT_CERTIFICATE=str(_pem(tmp_path))))
    assert "not both" in str(err)


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("GRAPH_TENANT_ID", "not a tenant!", "GUID"),
        ("GRAPH_CLIENT_ID", "my-app", "GUID"),
        ("GRAPH_AUTHORITY_HOST", "http://login.microsoftonline.com", "https"),
        ("GRAPH_AUTHORITY_HOST", "https://login.microsoftonline.com/tenant", "host only"),
        ("GRAPH_BASE_URL", "graph.microsoft.com/v1.0", "https"),
        ("GRAPH_BASE_URL", "https://user:pw@graph.microsoft.com/v1.0", "credentials"),
        ("SERVICE_DESK_PORTAL_URL", "javascript:alert(1)", "https"),
        ("MAIL_SENDER", "helpdesk", "mail address"),
        ("MAIL_SENDER", "Help Desk <hd@contoso.com>", "mail address"),
        ("SERVICE_DESK_EMAIL", "it@localhost", "mail address"),
        ("PHONE_DEFAULT_REGION", "XX", "region"),
        ("GRAPH_SCOPE", "a b", "one scope"),
        ("CONFLICT_READBACK_SECONDS", "eight", "number of seconds"),
        ("CONFLICT_READBACK_SECONDS", "-1", "from 0 to 60"),
        ("CONFLICT_READBACK_SECONDS", "61", "from 0 to 60"),
        ("CONFLICT_READBACK_SECONDS", "nan", "from 0 to 60"),
        ("CONFLICT_READBACK_SECONDS", "inf", "from 0 to 60"),
    ],
)
def test_malformed_values_are_refused_naming_the_variable(variable: str, value: str, fragment: str) -> None:
    err = _error(base_env(**{variable: value}))
    assert err.variable == variable
    assert fragment in str(err)


def test_certificate_file_must_exist(tmp_path: Path) -> None:
    env = base_env(GRAPH_CLIENT_CERTIFICATE=str(tmp_path / "missing.pem"))
    del env["GRAPH_CLIENT_SECRET"]
    err = _error(env)
    assert err.variable == "GRAPH_CLIENT_CERTIFICATE" and "no such file" in str(err)


def test_certificate_file_without_private_key_is_refused(tmp_path: Path) -> None:
    env = base_env(GRAPH_CLIENT_CERTIFICATE=str(_pem(tmp_path, key=False)))
    del env["GRAPH_CLIENT_SECRET"]
    assert "private key" in str(_error(env))


def test_unreadable_certificate_file_is_refused(tmp_path: Path) -> None:
    pem = _pem(tmp_path)
    pem.chmod(0)
    try:
        if pem.open("rb").readable():  # running as root: permissions do not apply
            pytest.skip("file permissions are not enforced for this user")
    except PermissionError:
        pass
    env = base_env(GRAPH_CLIENT_CERTIFICATE=str(pem))
    del env["GRAPH_CLIENT_SECRET"]
    assert "cannot read" in str(_error(env))


def test_ca_file_must_hold_a_certificate(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("hello")
    err = _error(base_env(SSL_CERT_FILE=str(bogus)))
    assert err.variable == "SSL_CERT_FILE"
    err = _error(base_env(REQUESTS_CA_BUNDLE=str(tmp_path / "nope.pem")))
    assert err.variable == "REQUESTS_CA_BUNDLE"


def test_certificate_password_without_certificate_is_refused() -> None:
    err = _error(base_env(GRAPH_CLIENT_CERTIFICATE_PASSWORD="pw"))
    assert err.variable == "GRAPH_CLIENT_CERTIFICATE_PASSWORD"
