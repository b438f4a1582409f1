"""TokenProvider: the real msal against the simulator's login endpoints over loopback HTTPS."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from graph.auth import PinnedVerifySession, TokenProvider, certificate_thumbprints
from graph.client import GraphClient
from graph.errors import TokenError
from graph.settings import GraphSettings
from graph.simulator.tenant import Application

from .cert_helpers import make_certificate


class CountingSession(PinnedVerifySession):
    """Our pinned session, recording what msal sends (the edge to the login endpoint)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        self.sent.append((str(method), str(url)))
        return super().request(method, url, *args, **kwargs)

    def token_posts(self) -> int:
        return sum(1 for method, url in self.sent if method == "POST" and url.endswith("/oauth2/v2.0/token"))


def make_pem(directory: Path, name: str = "client.pem") -> tuple[Path, str]:
    key_pem, cert_pem, _ = make_certificate()
    path = directory / name
    path.write_text(key_pem + cert_pem)
    return path, cert_pem


def settings_for(sim_env: dict[str, str], **changes: str | None) -> GraphSettings:
    env = dict(sim_env)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return GraphSettings.from_env(env)


async def graph_accepts(sim: Any, token: str) -> int:
    """Use the token on a real Graph call through our client; the status Graph answered."""

    class Fixed:
        async def token(self) -> str:
            return token

    async with httpx.AsyncClient(verify=_ctx(sim.ca_file)) as http:
        client = GraphClient(http, Fixed(), sim.base_url)
        response = await client.get("/organization")
        return response.status


def _ctx(ca_file: str) -> Any:
    import ssl

    return ssl.create_default_context(cafile=ca_file)


async def test_secret_gets_a_token_graph_accepts(sim: Any, sim_env: dict[str, str]) -> None:
    provider = await TokenProvider.create(settings_for(sim_env))
    token = await provider.token()
    assert token.count(".") == 2  # a JWT
    assert await graph_accepts(sim, token) == 200


async def test_second_token_call_comes_from_the_cache(sim: Any, sim_env: dict[str, str]) -> None:
    session = CountingSession()
    settings = settings_for(sim_env)
    session.verify = settings.ca_file or True
    provider = await TokenProvider.create(settings, session=session)
    first = await provider.token()
    second = await provider.token()
    assert first == second
    assert session.token_posts() == 1
    # instance discovery is off for a non-Microsoft host: msal asked nothing but our authority
    assert all(url.startswith(sim.authority_host) for _, url in session.sent)


async def test_invalidate_makes_the_next_call_ask_the_endpoint_again(
    sim: Any, sim_env: dict[str, str]
) -> None:
    session = CountingSession()
    settings = settings_for(sim_env)
    session.verify = settings.ca_file or True
    provider = await TokenProvider.create(settings, session=session)
    await provider.token()
    await provider.invalidate()
    await provider.token()
    assert session.token_posts() == 2


async def test_wrong_secret_raises_token_error_without_the_secret(sim: Any, sim_env: dict[str, str]) -> None:
    wrong = "Wr0ng~Secret~" + uuid.uuid4().hex
    provider = await TokenProvider.create(settings_for(sim_env, GRAPH_CLIENT_SECRET=wrong))
    with pytest.raises(TokenError) as info:
        await provider.token()
    err = info.value
    assert err.code == "invalid_client"
    assert err.aadsts == "AADSTS7000215"
    assert wrong not in str(err) and wrong not in repr(err) and wrong not in err.message
    assert "\n" not in err.message


async def test_certificate_credential_gets_a_token(sim: Any, sim_env: dict[str, str], tmp_path: Path) -> None:
    pem, cert_pem = make_pem(tmp_path)
    client_id = str(uuid.uuid4())
    sim.tenant.applications.append(
        Application(
            client_id=client_id, certificate_pem=cert_pem, roles=["User.Read.All", "Organization.Read.All"]
        )
    )
    settings = settings_for(
        sim_env, GRAPH_CLIENT_ID=client_id, GRAPH_CLIENT_SECRET=None, GRAPH_CLIENT_CERTIFICATE=str(pem)
    )
    provider = await TokenProvider.create(settings)
    assert provider.thumbprint == certificate_thumbprints(cert_pem)[0]
    token = await provider.token()
    assert await graph_accepts(sim, token) == 200


async def test_certificate_registered_by_thumbprint_only(
    sim: Any, sim_env: dict[str, str], tmp_path: Path
) -> None:
    pem, cert_pem = make_pem(tmp_path)
    client_id = str(uuid.uuid4())
    sha1, _ = certificate_thumbprints(cert_pem)
    sim.tenant.applications.append(
        Application(client_id=client_id, certificate_thumbprint=sha1, roles=["Organization.Read.All"])
    )
    settings = settings_for(
        sim_env, GRAPH_CLIENT_ID=client_id, GRAPH_CLIENT_SECRET=None, GRAPH_CLIENT_CERTIFICATE=str(pem)
    )
    provider = await TokenProvider.create(settings)
    assert await graph_accepts(sim, await provider.token()) == 200


async def test_unregistered_certificate_is_refused(sim: Any, sim_env: dict[str, str], tmp_path: Path) -> None:
    registered, registered_pem = make_pem(tmp_path, "registered.pem")
    other, _ = make_pem(tmp_path, "other.pem")
    client_id = str(uuid.uuid4())
    sim.tenant.applications.append(Application(client_id=client_id, certificate_pem=registered_pem))
    settings = settings_for(
        sim_env, GRAPH_CLIENT_ID=client_id, GRAPH_CLIENT_SECRET=None, GRAPH_CLIENT_CERTIFICATE=str(other)
    )
    provider = await TokenProvider.create(settings)
    with pytest.raises(TokenError) as info:
        await provider.token()
    assert info.value.code == "invalid_client" and info.value.aadsts == "AADSTS700027"


async def test_requests_ca_bundle_in_the_environment_does_not_override_our_ca(
    sim: Any, sim_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A CA bundle that does not contain the simulator's CA, as a stale corporate setting would be.
    _, unrelated_ca = make_pem(tmp_path, "unrelated.pem")
    unrelated = tmp_path / "unrelated-ca.pem"
    unrelated.write_text(unrelated_ca)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(unrelated))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(unrelated))
    settings = settings_for(sim_env, SSL_CERT_FILE=sim.ca_file)
    provider = await TokenProvider.create(settings)
    assert await graph_accepts(sim, await provider.token()) == 200


async def test_untrusted_authority_is_a_token_error(sim_env: dict[str, str], tmp_path: Path) -> None:
    _, unrelated_ca = make_pem(tmp_path, "unrelated.pem")
    ca = tmp_path / "ca.pem"
    ca.write_text(unrelated_ca)
    with pytest.raises(TokenError) as info:
        await TokenProvider.create(settings_for(sim_env, SSL_CERT_FILE=str(ca), REQUESTS_CA_BUNDLE=None))
    assert info.value.code == "authority_unreachable"
    assert sim_env.get("GRAPH_CLIENT_SECRET", "\0") not in str(info.value)


async def test_unreachable_authority_is_a_token_error(sim_env: dict[str, str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # nothing listens on `port` now
    with pytest.raises(TokenError) as info:
        await TokenProvider.create(settings_for(sim_env, GRAPH_AUTHORITY_HOST=f"https://127.0.0.1:{port}"))
    assert info.value.code == "authority_unreachable"
