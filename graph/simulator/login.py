"""Entra ID (login) side of the simulator: OpenID configuration and the client-credentials token endpoint."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import time
import uuid
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .tenant import Application, Tenant

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_AUDIENCE = "https://graph.microsoft.com"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class LoginError(Exception):
    """An Entra token-endpoint refusal: HTTP status, OAuth error, AADSTS number and text."""

    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__(f"AADSTS{aadsts}: {description}")
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description

    def body(self, correlation_id: str | None) -> dict[str, Any]:
        trace_id = str(uuid.uuid4())
        correlation = correlation_id or str(uuid.uuid4())
        now = dt.datetime.now(dt.UTC)
        stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        text = (
            f"AADSTS{self.aadsts}: {self.description}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation}\r\nTimestamp: {stamp}"
        )
        return {
            "error": self.error,
            "error_description": text,
            "error_codes": [self.aadsts],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.aadsts}",
        }


def resolve_tenant(tenant: Tenant, segment: str) -> bool:
    return segment.lower() in (tenant.tenant_id.lower(), tenant.default_domain.lower())


def openid_configuration(authority_host: str, segment: str, tenant: Tenant) -> dict[str, Any]:
    base = f"{authority_host}/{segment}"
    return {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{authority_host}/{tenant.tenant_id}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{authority_host}/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "roles"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }


def _thumbprints(cert: x509.Certificate) -> tuple[str, str]:
    der = cert.public_bytes(Encoding.DER)
    return hashlib.sha1(der).hexdigest(), hashlib.sha256(der).hexdigest()  # noqa: S324 - x5t is SHA-1 by spec


def _b64url_hex(value: str) -> str:
    padded = value + "=" * (-len(value) % 4)
    return base64.urlsafe_b64decode(padded).hex()


def _norm_thumb(value: str) -> str:
    return value.replace(":", "").replace(" ", "").lower()


def verify_assertion(app: Application, assertion: str, audiences: list[str]) -> None:
    """Check a client assertion as Entra does: key from the registered certificate, signature, aud, exp, iss/sub."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError as exc:
        raise LoginError(401, "invalid_client", 50027, "JWT token is invalid or malformed.") from exc
    alg = header.get("alg")
    if alg not in ("RS256", "PS256"):
        raise LoginError(
            401,
            "invalid_client",
            5002738,
            f"Invalid JWT token. '{alg}' is not a supported signature algorithm.",
        )
    certificate: x509.Certificate | None = None
    if app.certificate_pem:
        certificate = x509.load_pem_x509_certificate(app.certificate_pem.encode())
    elif app.certificate_thumbprint and header.get("x5c"):
        try:
            candidate = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
        except (ValueError, binascii.Error, IndexError, TypeError) as exc:
            raise LoginError(
                401, "invalid_client", 700027, "Client assertion contains an invalid x5c."
            ) from exc
        if _norm_thumb(app.certificate_thumbprint) in _thumbprints(candidate):
            certificate = candidate
    if certificate is None:
        raise LoginError(
            401,
            "invalid_client",
            700027,
            f"Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: "
            f"'{header.get('x5t', '')}']",
        )
    sha1, sha256 = _thumbprints(certificate)
    try:
        if ("x5t" in header and _b64url_hex(header["x5t"]) != sha1) or (
            "x5t#S256" in header and _b64url_hex(header["x5t#S256"]) != sha256
        ):
            raise LoginError(
                401,
                "invalid_client",
                700027,
                "Client assertion failed signature validation. [Reason - The key was not found.]",
            )
    except (ValueError, binascii.Error) as exc:
        raise LoginError(
            401, "invalid_client", 700027, "Client assertion failed signature validation."
        ) from exc
    try:
        claims = jwt.decode(
            assertion,
            certificate.public_key(),  # type: ignore[arg-type]
            algorithms=[alg],
            audience=audiences,
            options={"require": ["exp", "aud", "iss", "sub"]},
            leeway=0,
        )
    except jwt.ExpiredSignatureError as exc:
        raise LoginError(
            401, "invalid_client", 700024, "Client assertion is not within its valid time range."
        ) from exc
    except jwt.InvalidAudienceError as exc:
        raise LoginError(
            401,
            "invalid_client",
            700212,
            f"The client assertion audience is invalid. Expected one of: {audiences[0]}.",
        ) from exc
    except jwt.InvalidSignatureError as exc:
        raise LoginError(
            401, "invalid_client", 700027, "Client assertion failed signature validation."
        ) from exc
    except jwt.PyJWTError as exc:
        raise LoginError(401, "invalid_client", 50027, f"JWT token is invalid or malformed. {exc}") from exc
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise LoginError(
            401,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        )


def check_secret(app: Application, secret: str) -> None:
    if not app.client_secret or not hmac.compare_digest(app.client_secret.encode(), secret.encode()):
        raise LoginError(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "
            f"not the client secret ID, for a secret added to app '{app.client_id}'.",
        )


def issue_token(
    app: Application, tenant: Tenant, key: bytes, lifetime_s: int, issuer_host: str
) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "aud": GRAPH_AUDIENCE,
        "iss": f"https://sts.windows.net/{tenant.tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_s,
        "app_displayname": app.display_name,
        "appid": app.client_id,
        "azp": app.client_id,
        "idtyp": "app",
        "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant.tenant_id}/{app.client_id}")),
        "roles": list(app.roles),
        "sub": app.client_id,
        "tid": tenant.tenant_id,
        "ver": "1.0",
        "uti": uuid.uuid4().hex[:22],
        "xms_sim": issuer_host,
    }
    token = jwt.encode(claims, key, algorithm="HS256", headers={"typ": "JWT"})
    return {
        "token_type": "Bearer",
        "expires_in": lifetime_s,
        "ext_expires_in": lifetime_s,
        "access_token": token,
    }


def accepted_scopes(origins: list[str]) -> set[str]:
    scopes = {f"{GRAPH_AUDIENCE}/.default", f"{GRAPH_APP_ID}/.default", f"{GRAPH_AUDIENCE}//.default"}
    scopes.update(f"{o}/.default" for o in origins)
    return scopes
