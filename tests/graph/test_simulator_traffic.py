"""Registration report paging and throttle, $batch, identity throttling, latency and injected faults."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from graph.simulator import Behaviour, Simulator, SimulatorThread, Tenant
from graph.simulator.generate import generate_tenant, holder_id

from .simulator_helpers import MOBILE_ID, assert_graph_error, http, token_for, uid

REPORT = "/reports/authenticationMethods/userRegistrationDetails"
MOBILE_FILTER = "methodsRegistered/any(t: t eq 'mobilePhone')"


@pytest.fixture
async def graph(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with http(sim, await token_for(sim)) as client:
        yield client


async def test_report_pages_over_phone_users_with_next_link(sim: Simulator, graph: httpx.AsyncClient) -> None:
    sim.behaviour.report_throttle = False
    url: str | None = REPORT
    params: dict[str, str] | None = {
        "$filter": MOBILE_FILTER,
        "$top": "3",
        "$select": "id,userPrincipalName,methodsRegistered",
    }
    seen: list[str] = []
    while url:
        body = (await graph.get(url, params=params)).json()
        params = None
        assert 0 < len(body["value"]) <= 3
        for item in body["value"]:
            assert (
                set(item) == {"id", "userPrincipalName", "methodsRegistered"}
                and "mobilePhone" in item["methodsRegistered"]
            )
        seen.extend(item["id"] for item in body["value"])
        url = body.get("@odata.nextLink")
        assert url is None or "$skiptoken=" in url
    users = sim.tenant.users
    expected = [i for i in sim.tenant.order if "mobile" in users[i].phones and users[i].account_enabled]
    assert seen == expected
    other = await graph.get(
        REPORT,
        params={"$filter": "methodsRegistered/any(t: t eq 'alternateMobilePhone') and isAdmin eq false"},
    )
    assert [i["id"] for i in other.json()["value"]] == [uid("c3"), uid("d5")]
    assert_graph_error(await graph.get(REPORT, params={"$top": "1000"}), 400, "Request_BadRequest")


async def test_report_default_page_is_100_and_top_goes_to_999(sim_cert_dir: Path) -> None:
    sim = Simulator(generate_tenant(1200), Behaviour(report_throttle=False), cert_dir=sim_cert_dir)
    await sim.start()
    try:
        async with http(sim, await token_for(sim)) as graph:
            default = (await graph.get(REPORT)).json()
            big = (await graph.get(REPORT, params={"$top": "999"})).json()
            rest = (await graph.get(big["@odata.nextLink"])).json()
    finally:
        await sim.stop()
    assert len(default["value"]) == 100 and "@odata.nextLink" in default
    assert len(big["value"]) == 999
    enabled = sum(1 for u in sim.tenant.users.values() if u.account_enabled)
    assert len(rest["value"]) == enabled - 999 and "@odata.nextLink" not in rest


async def test_report_throttle_allows_five_requests_per_ten_seconds(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    statuses = [(await graph.get(REPORT, params={"$top": "1"})).status_code for _ in range(5)]
    throttled = await graph.get(REPORT, params={"$top": "1"})
    assert statuses == [200] * 5
    assert_graph_error(throttled, 429, "TooManyRequests")
    retry_after = throttled.headers["Retry-After"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 10
    assert (await graph.get(f"/users/{uid('c1')}")).status_code == 200  # other endpoints are not affected
    sim.behaviour.report_throttle = False
    assert (await graph.get(REPORT, params={"$top": "1"})).status_code == 200


async def test_report_throttle_window_reopens(sim: Simulator, graph: httpx.AsyncClient) -> None:
    sim.behaviour.report_limit, sim.behaviour.report_window_s = 2, 0.3
    assert [(await graph.get(REPORT)).status_code for _ in range(3)] == [200, 200, 429]
    # once a window has passed since the refusal, both admitted requests are out of it
    await asyncio.sleep(sim.behaviour.report_window_s)
    assert (await graph.get(REPORT)).status_code == 200


async def test_report_leaves_out_disabled_accounts_which_users_lists_without_advanced_query(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    sim.behaviour.report_throttle = False
    disabled = uid("d8")  # Dirk Disabled holds +49 1708880006 for SMS sign-in
    assert sim.tenant.users[disabled].phones["mobile"].sms == "ready"
    report = await graph.get(REPORT, params={"$filter": MOBILE_FILTER, "$top": "999"})
    assert disabled not in [item["id"] for item in report.json()["value"]]
    by_filter = await graph.get(REPORT, params={"$filter": f"id eq '{disabled}'"})
    assert by_filter.json()["value"] == []

    listed = await graph.get(
        "/users",
        params={"$filter": "accountEnabled eq false", "$select": "id,displayName,userPrincipalName"},
    )
    assert listed.status_code == 200, listed.text
    assert listed.json()["value"] == [
        {"id": disabled, "displayName": "Dirk Disabled", "userPrincipalName": "dirk.disabled@contoso.example"}
    ]
    assert_graph_error(
        await graph.get("/users", params={"$filter": "accountEnabled ne true"}),
        400,
        "Request_UnsupportedQuery",
        "Filter operator 'NotEqualsMatch' is not supported.",
    )
    advanced = await graph.get(
        "/users",
        params={"$filter": "accountEnabled ne true", "$count": "true", "$select": "id"},
        headers={"ConsistencyLevel": "eventual"},
    )
    assert [u["id"] for u in advanced.json()["value"]] == [disabled]


async def test_report_needs_audit_log_read_all_and_no_authentication_method_permission_will_do(
    sim: Simulator,
) -> None:
    app = sim.tenant.applications[0]
    app.roles = [r for r in app.roles if r != "AuditLog.Read.All"]
    assert "UserAuthenticationMethod.ReadWrite.All" in app.roles
    async with http(sim, await token_for(sim)) as graph:
        report = await graph.get(REPORT)
        item = await graph.get(f"{REPORT}/{uid('c1')}")
        phones = await graph.get(f"/users/{uid('c1')}/authentication/phoneMethods")
    for answer in (report, item):
        assert_graph_error(
            answer, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )
    assert phones.status_code == 200


async def test_report_in_a_tenant_without_entra_id_p1_or_p2_is_403_non_premium(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    sim.behaviour.update({"p1_licensed": False})
    for path in (REPORT, f"{REPORT}/{uid('c1')}"):
        assert_graph_error(
            await graph.get(path),
            403,
            "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
            "Neither tenant is B2C or tenant doesn't have premium license",
        )
    assert (await graph.get(f"/users/{uid('c1')}/authentication/phoneMethods")).status_code == 200


def batch_get(i: int, url: str) -> dict:
    return {"id": str(i), "method": "GET", "url": url}


async def test_batch_answers_each_item_with_relative_urls_either_way(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    requests = [
        batch_get(1, f"/users/{uid('c1')}/authentication/phoneMethods"),
        batch_get(2, f"users/{uid('c3')}/authentication/phoneMethods"),
        batch_get(3, "/users/ghost@contoso.example/authentication/phoneMethods"),
        {
            "id": "4",
            "method": "POST",
            "url": f"/users/{uid('c2')}/authentication/phoneMethods",
            "body": {"phoneNumber": "+491701112222", "phoneType": "mobile"},
            "headers": {"Content-Type": "application/json"},
        },
        batch_get(5, "/users?$filter=mail eq 'lee.gu@contoso.example'&$select=id"),
    ]
    r = await graph.post("/$batch", json={"requests": requests})
    assert r.status_code == 200
    by_id = {item["id"]: item for item in r.json()["responses"]}
    assert by_id["1"]["status"] == 200 and by_id["1"]["body"]["value"][0]["phoneNumber"] == "+49 1701234567"
    assert len(by_id["2"]["body"]["value"]) == 2
    assert by_id["3"]["status"] == 404 and by_id["3"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert by_id["4"]["status"] == 201 and by_id["4"]["body"]["phoneNumber"] == "+49 1701112222"
    assert [u["id"] for u in by_id["5"]["body"]["value"]] == [uid("c6")]
    items = [c for c in sim.calls if c.in_batch]
    assert len(items) == 5 and items[3].status == 201 and items[3].method == "POST"


async def test_batch_validation(graph: httpx.AsyncClient) -> None:
    too_many = [batch_get(i, f"/users/{uid('c1')}") for i in range(21)]
    assert_graph_error(await graph.post("/$batch", json={"requests": too_many}), 400, "BadRequest")
    dup = [batch_get(1, f"/users/{uid('c1')}"), batch_get(1, f"/users/{uid('c2')}")]
    assert_graph_error(await graph.post("/$batch", json={"requests": dup}), 400, "BadRequest")
    assert_graph_error(await graph.post("/$batch", json={"nope": []}), 400, "BadRequest")
    twenty = [batch_get(i, f"/users/{uid('c1')}") for i in range(20)]
    assert (await graph.post("/$batch", json={"requests": twenty})).status_code == 200
    no_type = [
        {"id": "1", "method": "POST", "url": f"/users/{uid('c2')}/authentication/phoneMethods", "body": {}}
    ]
    item = (await graph.post("/$batch", json={"requests": no_type})).json()["responses"][0]
    assert item["status"] == 400


def batch_write(i: str, user: str, number: str, depends_on: list[str] | None = None) -> dict:
    item = {
        "id": i,
        "method": "POST",
        "url": f"/users/{user}/authentication/phoneMethods",
        "body": {"phoneNumber": number, "phoneType": "mobile"},
        "headers": {"Content-Type": "application/json"},
    }
    if depends_on is not None:
        item["dependsOn"] = depends_on
    return item


async def test_batch_runs_a_request_after_the_one_it_depends_on_whatever_their_order(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    read = {**batch_get(1, f"/users/{uid('c2')}/authentication/phoneMethods"), "dependsOn": ["2"]}
    r = await graph.post("/$batch", json={"requests": [read, batch_write("2", uid("c2"), "+49 1701112222")]})
    assert r.status_code == 200
    by_id = {item["id"]: item for item in r.json()["responses"]}
    assert by_id["2"]["status"] == 201
    # the read ran after the write it depends on, though it came first in the batch
    assert by_id["1"]["status"] == 200
    assert [m["phoneNumber"] for m in by_id["1"]["body"]["value"]] == ["+49 1701112222"]


async def test_batch_request_whose_dependency_failed_is_424_and_not_run(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    requests = [
        batch_write("1", "ghost@contoso.example", "+49 1701112222"),
        batch_write("2", uid("c2"), "+49 1703334444", depends_on=["1"]),
    ]
    r = await graph.post("/$batch", json={"requests": requests})
    first, second = r.json()["responses"]
    assert first["status"] == 404 and second["status"] == 424
    assert "mobile" not in sim.tenant.users[uid("c2")].phones


async def test_batch_dependson_must_name_other_requests_of_the_batch(graph: httpx.AsyncClient) -> None:
    unknown = [batch_write("1", uid("c2"), "+49 1701112222", depends_on=["9"])]
    assert_graph_error(await graph.post("/$batch", json={"requests": unknown}), 400, "BadRequest")
    cycle = [
        batch_write("1", uid("c2"), "+49 1701112222", depends_on=["2"]),
        {**batch_get(2, f"/users/{uid('c2')}"), "dependsOn": ["1"]},
    ]
    assert_graph_error(await graph.post("/$batch", json={"requests": cycle}), 400, "BadRequest")


async def test_a_dropped_connection_meant_for_a_batched_write_cuts_the_whole_batch(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    sim.faults.inject("POST", r"/phoneMethods$", "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        await graph.post("/$batch", json={"requests": [batch_write("1", uid("c2"), "+49 1701112222")]})
    assert "mobile" not in sim.tenant.users[uid("c2")].phones
    sim.faults.inject("POST", r"/phoneMethods$", "apply_then_drop")
    with pytest.raises(httpx.RemoteProtocolError):
        await graph.post("/$batch", json={"requests": [batch_write("1", uid("c2"), "+49 1701112222")]})
    assert sim.tenant.users[uid("c2")].phones["mobile"].number == "+49 1701112222"


async def test_batch_items_are_throttled_one_by_one_with_retry_after(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    requests = [batch_get(i, f"{REPORT}?$top=1") for i in range(7)]
    r = await graph.post("/$batch", json={"requests": requests})
    assert r.status_code == 200
    statuses = [item["status"] for item in r.json()["responses"]]
    assert statuses == [200] * 5 + [429] * 2
    throttled = r.json()["responses"][5]
    assert throttled["headers"]["Retry-After"].isdigit()
    assert throttled["body"]["error"]["code"] == "TooManyRequests"


async def test_identity_token_bucket_throttles_with_integer_or_fractional_retry_after(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    sim.behaviour.throttle, sim.behaviour.throttle_capacity, sim.behaviour.throttle_window_s = True, 3, 10.0
    path = f"/users/{uid('c1')}/authentication/phoneMethods"
    statuses = [(await graph.get(path)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = await graph.get(path)
    assert_graph_error(throttled, 429, "TooManyRequests")
    assert throttled.headers["Retry-After"].isdigit()
    assert throttled.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    sim.behaviour.fractional_retry_after = True
    fractional = await graph.get(path)
    assert fractional.status_code == 429
    value = fractional.headers["Retry-After"]
    assert "." in value and 0 < float(value) <= 10
    batch = await graph.post("/$batch", json={"requests": [batch_get(1, path), batch_get(2, path)]})
    assert [i["status"] for i in batch.json()["responses"]] == [429, 429]
    assert "." in batch.json()["responses"][0]["headers"]["Retry-After"]


async def test_latency_is_added_per_request_and_per_batch(sim: Simulator, graph: httpx.AsyncClient) -> None:
    sim.behaviour.latency_ms, sim.behaviour.batch_latency_ms = 60, 150
    started = time.monotonic()
    await graph.get(f"/users/{uid('c1')}")
    single = time.monotonic() - started
    started = time.monotonic()
    await graph.post("/$batch", json={"requests": [batch_get(i, f"/users/{uid('c1')}") for i in range(5)]})
    batched = time.monotonic() - started
    assert single >= 0.06 and batched >= 0.15


async def test_injected_status_fault_then_recovery(sim: Simulator, graph: httpx.AsyncClient) -> None:
    sim.faults.inject("GET", r"/phoneMethods$", 503, times=2, retry_after=1)
    path = f"/users/{uid('c1')}/authentication/phoneMethods"
    first, second, third = [await graph.get(path) for _ in range(3)]
    assert_graph_error(first, 503, "serviceNotAvailable")
    assert first.headers["Retry-After"] == "1" and second.status_code == 503 and third.status_code == 200
    assert [c.fault for c in sim.calls] == ["503", "503", None]


async def test_dropped_connection_and_apply_then_drop(sim: Simulator, graph: httpx.AsyncClient) -> None:
    path = f"/users/{uid('c2')}/authentication/phoneMethods"
    sim.faults.inject("GET", r"/phoneMethods$", "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        await graph.get(path)
    sim.faults.inject("POST", r"/phoneMethods$", "apply_then_drop")
    with pytest.raises(httpx.RemoteProtocolError):
        await graph.post(path, json={"phoneNumber": "+49 1701112222", "phoneType": "mobile"})
    after = await graph.get(path)
    assert (
        after.json()["value"][0]["phoneNumber"] == "+49 1701112222"
    )  # the write happened; the answer was lost
    assert sim.calls[1].status is None and sim.calls[1].fault == "apply_then_drop"


async def test_timeout_fault_holds_the_request_past_the_clients_timeout(sim: Simulator) -> None:
    sim.behaviour.hang_s = 5.0
    sim.faults.inject("PATCH", r"/phoneMethods/", "timeout", after_apply=True)
    # only reading the answer is bounded tightly; connecting may take its time on a busy machine
    async with http(sim, await token_for(sim), timeout=httpx.Timeout(10.0, read=0.3)) as graph:
        with pytest.raises(httpx.ReadTimeout):
            await graph.patch(
                f"/users/{uid('c1')}/authentication/phoneMethods/{MOBILE_ID}",
                json={"phoneNumber": "+49 1701110000", "phoneType": "mobile"},
            )
    assert sim.tenant.users[uid("c1")].phones["mobile"].number == "+49 1701110000"


async def test_batch_item_fault(sim: Simulator, graph: httpx.AsyncClient) -> None:
    sim.faults.inject("GET", r"/users/.*c1/authentication", 429, retry_after=2)
    r = await graph.post(
        "/$batch",
        json={
            "requests": [
                batch_get(1, f"/users/{uid('c1')}/authentication/phoneMethods"),
                batch_get(2, f"/users/{uid('c3')}/authentication/phoneMethods"),
            ]
        },
    )
    first, second = r.json()["responses"]
    assert first["status"] == 429 and first["headers"]["Retry-After"] == "2" and second["status"] == 200


async def test_control_endpoints(sim: Simulator, graph: httpx.AsyncClient) -> None:
    ctx = ssl.create_default_context(cafile=sim.ca_file)
    async with httpx.AsyncClient(base_url=f"{sim.authority_host}/_sim", verify=ctx) as control:
        assert (await control.post("/behaviour", json={"latency_ms": 5, "visibility_delay_ms": 0})).json()[
            "latency_ms"
        ] == 5
        assert (await control.post("/behaviour", json={"no_such": 1})).status_code == 400
        assert (
            await control.post("/faults", json={"method": "GET", "path": "/organization", "action": 500})
        ).status_code == 200
        assert (await graph.get("/organization")).status_code == 500
        assert (
            await control.put(f"/users/{uid('c2')}/phones/mobile", json={"phoneNumber": "+49 1701112222"})
        ).status_code == 200
        calls = (await control.get("/calls")).json()
        assert calls[-1]["path"] == "/v1.0/organization" and calls[-1]["status"] == 500
        await graph.post(
            "/users/servicedesk@contoso.example/sendMail",
            json={
                "message": {
                    "toRecipients": [{"emailAddress": {"address": "lee.gu@contoso.example"}}],
                    "body": {"contentType": "Text", "content": "hi"},
                }
            },
        )
        assert (await control.get("/outbox")).json()[0]["to"] == ["lee.gu@contoso.example"]
        state = (await control.get("/state")).json()
        diego = next(u for u in state["users"] if u["id"] == uid("c2"))
        assert diego["phoneMethods"][0]["phoneNumber"] == "+49 1701112222"
        assert (await control.post("/reset")).status_code == 200
    assert sim.calls == [] and sim.outbox == [] and sim.tenant.users[uid("c2")].phones == {}


def test_simulator_thread_serves_sync_clients(sim_thread: SimulatorThread) -> None:
    app = sim_thread.tenant.applications[0]
    ctx = ssl.create_default_context(cafile=sim_thread.ca_file)
    with httpx.Client(verify=ctx) as client:
        token = client.post(
            f"{sim_thread.authority_host}/{sim_thread.tenant.tenant_id}/oauth2/v2.0/token",
            data={
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                "grant_type": "client_credentials",
                "scope": "https://graph.microsoft.com/.default",
            },
        ).json()["access_token"]
        r = client.get(
            f"{sim_thread.base_url}/users/{uid('c1')}", headers={"Authorization": f"Bearer {token}"}
        )
    assert r.status_code == 200 and r.json()["displayName"] == "Lynne Robbins"
    sim_thread.call(sim_thread.tenant.set_phone, uid("c2"), "mobile", "+49 1701112222")
    with httpx.Client(verify=ctx) as client:
        phones = client.get(
            f"{sim_thread.base_url}/users/{uid('c2')}/authentication/phoneMethods",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert phones.json()["value"][0]["phoneNumber"] == "+49 1701112222"
    assert [c.status for c in sim_thread.calls] == [200, 200]


def test_standalone_module_prints_where_it_listens(sim_cert_dir: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "graph.simulator", "--port", "0", "--cert-dir", str(sim_cert_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["tenant_id"] == "8f3c2a51-0d6e-4b7a-9c1f-2e4d6b8a0c11"
        ctx = ssl.create_default_context(cafile=info["ca_file"])
        with httpx.Client(verify=ctx) as client:
            r = client.get(
                f"{info['authority_host']}/{info['tenant_id']}/v2.0/.well-known/openid-configuration"
            )
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_generator_places_the_holder_near_the_end_with_distinct_numbers(tmp_path: Path) -> None:
    tenant = generate_tenant(2000, holder_number="+49 1609876543")
    loaded = Tenant.load(tenant)
    numbers = [u.phones["mobile"].number for u in loaded.users.values() if "mobile" in u.phones]
    assert len(numbers) == len(set(numbers))
    holder = holder_id(tenant)
    assert loaded.sms_holders("+491609876543") == {holder}
    assert loaded.order.index(holder) >= int(len(loaded.order) * 0.95)
    out = tmp_path / "t.json"
    subprocess.run(
        [sys.executable, "-m", "graph.simulator.generate", "--users", "300", "--out", str(out)],
        check=True,
        capture_output=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert len(json.loads(out.read_text())["users"]) == 300 + len(generate_tenant(1)["users"]) - 1
