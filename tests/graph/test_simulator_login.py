"""The simulator's Entra login side, driven by real msal (instance discovery off) and raw HTTP."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from graph.simulator import Simulator

from .cert_helpers import make_certificate
from .simulator_helpers import (
    READONLY_CLIENT_ID,
    acquire,
    assert_graph_error,
    http,
    msal_app,
    raw_http,
    token_for,
    uid,
)


async def test_openid_configuration_names_the_endpoints_and_issuer(sim: Simulator) -> None:
    tid = sim.tenant.tenant_id
    async with raw_http(sim) as client:
        r = await client.get(f"/{tid}/v2.0/.well-known/openid-configuration")
        unknown = await client.get("/not-a-tenant/v2.0/.well-known/openid-configuration")
    assert r.status_code == 200
    doc = r.json()
    assert doc["token_endpoint"] == f"{sim.authority_host}/{tid}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"] == f"{sim.authority_host}/{tid}/oauth2/v2.0/authorize"
    assert doc["issuer"] == f"{sim.authority_host}/{tid}/v2.0"
    assert doc["jwks_uri"].startswith(sim.authority_host)
    assert unknown.status_code == 400 and "AADSTS90002" in unknown.json()["error_description"]


async def test_msal_gets_a_token_with_the_apps_roles_and_then_uses_its_cache(sim: Simulator) -> None:
    app = await asyncio.to_thread(msal_app, sim)
    first = await acquire(app)
    second = await acquire(app)
    assert first["token_type"] == "Bearer" and first["expires_in"] == 3599
    assert first["token_source"] == "identity_provider" and second["token_source"] == "cache"
    assert len(sim.token_requests) == 1
    claims = jwt.decode(first["access_token"], options={"verify_signature": False})
    assert claims["tid"] == sim.tenant.tenant_id
    assert claims["roles"] == sim.tenant.applications[0].roles
    assert claims["exp"] - time.time() > 3500


async def test_wrong_secret_gets_entras_invalid_client_answer(sim: Simulator) -> None:
    app = await asyncio.to_thread(msal_app, sim, None, "not-the-secret")
    result = await acquire(app)
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert "Trace ID:" in result["error_description"] and "Correlation ID:" in result["error_description"]
    async with raw_http(sim) as client:
        r = await client.post(
            f"/{sim.tenant.tenant_id}/oauth2/v2.0/token",
            data={
                "client_id": sim.tenant.applications[0].client_id,
                "client_secret": "wrong",
                "grant_type": "client_credentials",
                "scope": "https://graph.microsoft.com/.default",
            },
            headers={"client-request-id": "abc-123"},
        )
    assert r.status_code == 401
    body = r.json()
    assert set(body) >= {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
    }
    assert body["correlation_id"] == "abc-123"


async def test_unknown_client_and_bad_requests_are_refused(sim: Simulator) -> None:
    token_url = f"/{sim.tenant.tenant_id}/oauth2/v2.0/token"
    base = {"grant_type": "client_credentials", "scope": "https://graph.microsoft.com/.default"}
    async with raw_http(sim) as client:
        unknown = await client.post(
            token_url, data={**base, "client_id": str(uuid.uuid4()), "client_secret": "x"}
        )
        no_cred = await client.post(
            token_url, data={**base, "client_id": sim.tenant.applications[0].client_id}
        )
        bad_scope = await client.post(
            token_url,
            data={
                **base,
                "scope": "User.Read",
                "client_id": sim.tenant.applications[0].client_id,
                "client_secret": "x",
            },
        )
        bad_grant = await client.post(token_url, data={**base, "grant_type": "password", "client_id": "x"})
        bad_tenant = await client.post(
            "/nope/oauth2/v2.0/token", data={**base, "client_id": "x", "client_secret": "y"}
        )
    assert unknown.status_code == 400 and unknown.json()["error_codes"] == [700016]
    assert no_cred.status_code == 401 and no_cred.json()["error_codes"] == [7000216]
    assert bad_scope.status_code == 400 and bad_scope.json()["error"] == "invalid_scope"
    assert bad_grant.status_code == 400 and bad_grant.json()["error"] == "unsupported_grant_type"
    assert bad_tenant.status_code == 400 and bad_tenant.json()["error_codes"] == [90002]


async def test_certificate_assertion_signed_by_the_registered_certificate_is_accepted(sim: Simulator) -> None:
    key_pem, cert_pem, thumb = make_certificate()
    sim.tenant.applications[0].certificate_pem = cert_pem
    app = await asyncio.to_thread(msal_app, sim, None, {"private_key": key_pem, "thumbprint": thumb})
    result = await acquire(app)
    assert "access_token" in result, result
    assert sim.token_requests[-1]["auth"] == "assertion"


async def test_certificate_assertion_from_another_key_is_refused(sim: Simulator) -> None:
    _, cert_pem, _ = make_certificate()
    other_key, _, other_thumb = make_certificate()
    sim.tenant.applications[0].certificate_pem = cert_pem
    app = await asyncio.to_thread(msal_app, sim, None, {"private_key": other_key, "thumbprint": other_thumb})
    result = await acquire(app)
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]


async def test_thumbprint_registration_verifies_the_certificate_sent_in_x5c(sim: Simulator) -> None:
    key_pem, cert_pem, thumb = make_certificate()
    app_reg = sim.tenant.applications[0]
    app_reg.certificate_thumbprint = thumb.upper()
    credential = {"private_key": key_pem, "thumbprint": thumb, "public_certificate": cert_pem}
    result = await acquire(await asyncio.to_thread(msal_app, sim, None, credential))
    assert "access_token" in result, result
    other_key, other_cert, other_thumb = make_certificate()
    wrong = {"private_key": other_key, "thumbprint": other_thumb, "public_certificate": other_cert}
    refused = await acquire(await asyncio.to_thread(msal_app, sim, None, wrong))
    assert refused["error_codes"] == [700027]


def _assertion(key_pem: str, cert_pem: str, client_id: str, aud: str, exp_delta: int) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    x5t = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA1())).decode().rstrip("=")  # noqa: S303
    now = int(time.time())
    claims = {"aud": aud, "iss": client_id, "sub": client_id, "jti": str(uuid.uuid4()), "nbf": now - 60}
    claims["exp"] = now + exp_delta
    return jwt.encode(claims, key_pem, algorithm="RS256", headers={"x5t": x5t})


async def test_expired_or_misaddressed_assertion_is_refused(sim: Simulator) -> None:
    key_pem, cert_pem, _ = make_certificate()
    app = sim.tenant.applications[0]
    app.certificate_pem = cert_pem
    token_url = f"{sim.authority_host}/{sim.tenant.tenant_id}/oauth2/v2.0/token"
    form = {
        "grant_type": "client_credentials",
        "scope": "https://graph.microsoft.com/.default",
        "client_id": app.client_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    async with raw_http(sim) as client:
        ok = await client.post(
            token_url,
            data={**form, "client_assertion": _assertion(key_pem, cert_pem, app.client_id, token_url, 600)},
        )
        expired = await client.post(
            token_url,
            data={**form, "client_assertion": _assertion(key_pem, cert_pem, app.client_id, token_url, -60)},
        )
        wrong_aud = await client.post(
            token_url,
            data={
                **form,
                "client_assertion": _assertion(
                    key_pem, cert_pem, app.client_id, "https://elsewhere/token", 600
                ),
            },
        )
        PS256 = jwt.encode(
            {"aud": token_url, "iss": app.client_id, "sub": app.client_id, "exp": int(time.time()) + 600},
            key_pem,
            algorithm="PS256",
        )
        ps = await client.post(token_url, data={**form, "client_assertion": PS256})
    assert ok.status_code == 200 and ok.json()["expires_in"] == 3599
    assert expired.status_code == 401 and expired.json()["error_codes"] == [700024]
    assert wrong_aud.status_code == 401 and wrong_aud.json()["error"] == "invalid_client"
    assert ps.status_code == 200


async def test_graph_refuses_missing_invalid_and_expired_tokens(sim: Simulator) -> None:
    path = f"/users/{uid('c1')}"
    async with http(sim) as client:
        missing = await client.get(path)
        garbage = await client.get(path, headers={"Authorization": "Bearer not.a.token"})
    assert_graph_error(missing, 401, "InvalidAuthenticationToken", "Access token is empty.")
    assert "WWW-Authenticate" in missing.headers
    assert_graph_error(garbage, 401, "InvalidAuthenticationToken")
    sim.behaviour.token_lifetime_s = -30  # tokens are born expired
    async with raw_http(sim) as client:
        r = await client.post(
            f"/{sim.tenant.tenant_id}/oauth2/v2.0/token",
            data={
                "client_id": sim.tenant.applications[0].client_id,
                "client_secret": sim.tenant.applications[0].client_secret,
                "grant_type": "client_credentials",
                "scope": "https://graph.microsoft.com/.default",
            },
        )
    async with http(sim, r.json()["access_token"]) as client:
        expired = await client.get(path)
    assert_graph_error(
        expired, 401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."
    )


async def test_app_without_the_role_gets_403_in_each_apis_wording(sim: Simulator) -> None:
    token = await token_for(sim, READONLY_CLIENT_ID)
    async with http(sim, token) as client:
        write = await client.post(
            f"/users/{uid('c2')}/authentication/phoneMethods",
            json={"phoneType": "mobile", "phoneNumber": "+49 1701110000"},
        )
        report = await client.get("/reports/authenticationMethods/userRegistrationDetails")
        mail = await client.post(f"/users/{uid('d0')}/sendMail", json={"message": {}})
        read = await client.get(f"/users/{uid('c1')}/authentication/phoneMethods")
    assert_graph_error(write, 403, "Authorization_RequestDenied", "Request Authorization failed")
    assert_graph_error(
        report, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )
    assert_graph_error(mail, 403, "ErrorAccessDenied")
    assert read.status_code == 200
    assert sim.tenant.users[uid("c2")].phones == {}


@pytest.mark.parametrize("scope_kind", ["graph", "simulator-origin"])
async def test_scope_may_name_graph_or_the_simulators_origin(sim: Simulator, scope_kind: str) -> None:
    scope = (
        "https://graph.microsoft.com/.default" if scope_kind == "graph" else f"{sim.authority_host}/.default"
    )
    app = sim.tenant.applications[0]
    async with raw_http(sim) as client:
        r = await client.post(
            f"/{sim.tenant.default_domain}/oauth2/v2.0/token",
            data={
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                "grant_type": "client_credentials",
                "scope": scope,
            },
        )
    assert r.status_code == 200
