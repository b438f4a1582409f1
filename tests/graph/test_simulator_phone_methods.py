"""phoneMethods in the simulator: every rule of graph-behaviour.md §1-2, over real HTTPS."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from graph.simulator import Simulator

from .simulator_helpers import ALT_ID, MOBILE_ID, OFFICE_ID, assert_graph_error, http, token_for, uid

LYNNE, DIEGO, NESTOR, GRADY, LEE = uid("c1"), uid("c2"), uid("c3"), uid("c5"), uid("c6")
OLGA, NORA, AVA = uid("d1"), uid("d2"), uid("d5")


@pytest.fixture
async def graph(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with http(sim, await token_for(sim)) as client:
        yield client


def pm(user: str, method_id: str | None = None) -> str:
    return f"/users/{user}/authentication/phoneMethods" + (f"/{method_id}" if method_id else "")


async def test_list_returns_every_phone_with_the_well_known_ids_and_standard_headers(
    graph: httpx.AsyncClient,
) -> None:
    r = await graph.get(pm(OLGA), headers={"client-request-id": "my-id-1"})
    assert r.status_code == 200
    assert r.json()["value"] == [
        {"id": MOBILE_ID, "phoneNumber": "+49 1706660001", "phoneType": "mobile", "smsSignInState": "ready"},
        {
            "id": OFFICE_ID,
            "phoneNumber": "+49 891234567x123",
            "phoneType": "office",
            "smsSignInState": "notSupported",
        },
    ]
    assert r.headers["client-request-id"] == "my-id-1"
    assert r.headers["request-id"] and r.headers["request-id"] != "my-id-1"
    assert "ServerInfo" in r.headers["x-ms-ags-diagnostic"]
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Date" in r.headers
    assert r.headers["Content-Type"].startswith("application/json;odata.metadata=minimal")
    empty = await graph.get(pm(DIEGO))
    assert empty.json()["value"] == []
    assert empty.headers["client-request-id"] == empty.headers["request-id"]


async def test_list_filters_by_phone_type(graph: httpx.AsyncClient) -> None:
    r = await graph.get(pm(NESTOR), params={"$filter": "phoneType eq 'alternateMobile'"})
    assert [m["id"] for m in r.json()["value"]] == [ALT_ID]
    bad = await graph.get(pm(NESTOR), params={"$filter": "phoneNumber gt '1'"})
    assert_graph_error(bad, 400, "Request_UnsupportedQuery")


async def test_get_by_id_and_404s(graph: httpx.AsyncClient) -> None:
    r = await graph.get(pm(NESTOR, ALT_ID))
    assert r.status_code == 200 and r.json()["phoneNumber"] == "+49 1702224444"
    assert_graph_error(await graph.get(pm(DIEGO, MOBILE_ID)), 404, "Request_ResourceNotFound")
    assert_graph_error(
        await graph.get(pm(NESTOR, "00000000-1111-2222-3333-444444444444")), 404, "Request_ResourceNotFound"
    )
    missing_user = await graph.get(pm("nobody@contoso.example"))
    error = assert_graph_error(missing_user, 404, "Request_ResourceNotFound")
    assert "nobody@contoso.example" in error["message"]


async def test_guest_upn_works_url_encoded_and_not_raw(graph: httpx.AsyncClient) -> None:
    upn = "adele_partner.example#EXT#@contoso.example"
    r = await graph.get(f"/users/{quote(upn, safe='@')}")
    assert r.status_code == 200 and r.json()["id"] == uid("b2")
    raw = await graph.get(f"/users/{upn}")  # '#' starts a fragment: Graph sees a different user
    assert raw.status_code == 404


async def test_post_creates_and_normalises_to_country_code_space_number(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    r = await graph.post(pm(DIEGO), json={"phoneNumber": "+491701112222", "phoneType": "mobile"})
    assert r.status_code == 201
    assert r.json()["phoneNumber"] == "+49 1701112222" and r.json()["id"] == MOBILE_ID
    assert r.json()["smsSignInState"] == "ready"
    assert r.headers["Location"].endswith(pm(DIEGO, MOBILE_ID))
    for number, expected in [
        ("+12065550100", "+1 2065550100"),
        ("+31612345678", "+31 612345678"),
        ("+43 664 1234567", "+43 6641234567"),
    ]:
        user = sim.tenant.add_user(
            {"id": f"n-{number}", "userPrincipalName": f"n{number[1:].replace(' ', '')}@contoso.example"}
        )
        created = await graph.post(pm(user.id), json={"phoneNumber": number, "phoneType": "mobile"})
        assert created.status_code == 201 and created.json()["phoneNumber"] == expected


async def test_normalisation_switched_off_keeps_the_number_as_sent(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    sim.behaviour.normalise_numbers = False
    r = await graph.post(pm(DIEGO), json={"phoneNumber": "+491701112222", "phoneType": "mobile"})
    assert r.status_code == 201 and r.json()["phoneNumber"] == "+491701112222"


@pytest.mark.parametrize(
    "number",
    [
        "0170 1112222",
        "+49 17O1112222",
        "",
        "+999 1234567",
        "+49 12",
        "+49 1701112222x12",
        "+49 170 111 2222 3333 4444 5",
    ],
)
async def test_invalid_numbers_get_400_and_change_nothing(
    sim: Simulator, graph: httpx.AsyncClient, number: str
) -> None:
    r = await graph.post(pm(DIEGO), json={"phoneNumber": number, "phoneType": "mobile"})
    assert_graph_error(r, 400, "badRequest")
    assert sim.tenant.users[DIEGO].phones == {}


async def test_extension_is_accepted_for_office_phones(graph: httpx.AsyncClient) -> None:
    r = await graph.post(pm(DIEGO), json={"phoneNumber": "+1 4251234567x12", "phoneType": "office"})
    assert r.status_code == 201 and r.json()["phoneNumber"] == "+1 4251234567x12"


async def test_one_number_per_type_and_alternate_needs_mobile(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    second = await graph.post(pm(LYNNE), json={"phoneNumber": "+49 1701119999", "phoneType": "mobile"})
    assert_graph_error(second, 400, "badRequest")
    assert sim.tenant.users[LYNNE].phones["mobile"].number == "+49 1701234567"
    alt = await graph.post(pm(DIEGO), json={"phoneNumber": "+49 1701119999", "phoneType": "alternateMobile"})
    assert_graph_error(alt, 400, "badRequest")
    read_only = await graph.post(
        pm(DIEGO), json={"phoneNumber": "+49 1701119999", "phoneType": "mobile", "smsSignInState": "ready"}
    )
    assert_graph_error(read_only, 400, "badRequest")
    bad_type = await graph.post(pm(DIEGO), json={"phoneNumber": "+49 1701119999", "phoneType": "pager"})
    assert_graph_error(bad_type, 400, "badRequest")
    assert sim.tenant.users[DIEGO].phones == {}


async def test_patch_answers_204_without_body_and_cannot_change_type(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    r = await graph.patch(pm(LYNNE, MOBILE_ID), json={"phoneNumber": "+491701230000", "phoneType": "mobile"})
    assert r.status_code == 204 and r.content == b""
    assert (await graph.get(pm(LYNNE, MOBILE_ID))).json()["phoneNumber"] == "+49 1701230000"
    change = await graph.patch(
        pm(LYNNE, MOBILE_ID), json={"phoneNumber": "+491701230000", "phoneType": "office"}
    )
    assert_graph_error(change, 400, "badRequest")
    missing = await graph.patch(
        pm(DIEGO, MOBILE_ID), json={"phoneNumber": "+491701230000", "phoneType": "mobile"}
    )
    assert_graph_error(missing, 404, "Request_ResourceNotFound")
    invalid = await graph.patch(pm(LYNNE, MOBILE_ID), json={"phoneNumber": "abc", "phoneType": "mobile"})
    assert_graph_error(invalid, 400, "badRequest")
    assert sim.tenant.users[LYNNE].phones["mobile"].number == "+49 1701230000"


async def test_put_is_not_allowed(graph: httpx.AsyncClient) -> None:
    r = await graph.put(pm(LYNNE, MOBILE_ID), json={"phoneNumber": "+491701230000", "phoneType": "mobile"})
    assert r.status_code == 405 and r.json()["error"]["innerError"]["request-id"]


async def test_delete_rules(sim: Simulator, graph: httpx.AsyncClient) -> None:
    sim.tenant.users[LEE].other_methods = ("microsoftAuthenticator",)  # the default, but not the only method
    blocked = await graph.delete(pm(NESTOR, MOBILE_ID))
    assert_graph_error(blocked, 400, "badRequest")
    assert "alternateMobile" in blocked.json()["error"]["message"]
    default = await graph.delete(pm(LEE, MOBILE_ID))
    assert_graph_error(default, 400, "badRequest")
    assert default.json()["error"]["message"] == "Cannot delete default method with other methods configured."
    default_alt = await graph.delete(pm(AVA, ALT_ID))
    assert_graph_error(default_alt, 400, "badRequest")
    assert set(sim.tenant.users[NESTOR].phones) == {"mobile", "alternateMobile"}
    assert "mobile" in sim.tenant.users[LEE].phones
    gone_alt = await graph.delete(pm(NESTOR, ALT_ID))
    assert gone_alt.status_code == 204 and gone_alt.content == b""
    gone_mobile = await graph.delete(pm(NESTOR, MOBILE_ID))
    assert gone_mobile.status_code == 204
    assert (await graph.get(pm(NESTOR))).json()["value"] == []
    again = await graph.delete(pm(NESTOR, MOBILE_ID))
    assert_graph_error(again, 404, "Request_ResourceNotFound")


async def test_the_default_method_can_be_deleted_when_it_is_the_users_only_method(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    assert set(sim.tenant.users[LEE].phones) == {"mobile"} and not sim.tenant.users[LEE].other_methods
    gone = await graph.delete(pm(LEE, MOBILE_ID))
    assert gone.status_code == 204
    assert (await graph.get(pm(LEE))).json()["value"] == []


async def test_with_the_switch_off_the_default_method_is_never_deleted(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    sim.behaviour.lone_default_deletable = False
    refused = await graph.delete(pm(LEE, MOBILE_ID))
    assert_graph_error(refused, 400, "badRequest")
    assert "mobile" in sim.tenant.users[LEE].phones


async def test_a_409_with_another_code_changes_nothing(sim: Simulator, graph: httpx.AsyncClient) -> None:
    sim.behaviour.write_conflict_code = "conflictingOperation"
    created = await graph.post(pm(DIEGO), json={"phoneNumber": "+491701112233", "phoneType": "mobile"})
    assert_graph_error(created, 409, "conflictingOperation")
    assert created.json()["error"]["message"]
    changed = await graph.patch(
        pm(LYNNE, MOBILE_ID), json={"phoneNumber": "+491701112233", "phoneType": "mobile"}
    )
    assert_graph_error(changed, 409, "conflictingOperation")
    assert "mobile" not in sim.tenant.users[DIEGO].phones
    assert sim.tenant.users[LYNNE].phones["mobile"].number == "+49 1701234567"


async def test_sms_conflict_409_with_method_stored(sim: Simulator, graph: httpx.AsyncClient) -> None:
    r = await graph.post(pm(DIEGO), json={"phoneNumber": "+491709876543", "phoneType": "mobile"})
    assert_graph_error(r, 409, "phoneNumberNotUnique")
    stored = (await graph.get(pm(DIEGO, MOBILE_ID))).json()
    assert stored["phoneNumber"] == "+49 1709876543" and stored["smsSignInState"] == "phoneNumberNotUnique"
    # The holder keeps SMS sign-in.
    assert sim.tenant.users[GRADY].phones["mobile"].sms == "ready"


async def test_sms_conflict_409_with_method_not_stored(sim: Simulator, graph: httpx.AsyncClient) -> None:
    sim.behaviour.conflict_stores_method = False
    r = await graph.post(pm(DIEGO), json={"phoneNumber": "+49 1709876543", "phoneType": "mobile"})
    assert_graph_error(r, 409, "phoneNumberNotUnique")
    assert (await graph.get(pm(DIEGO))).json()["value"] == []
    patch = await graph.patch(
        pm(LYNNE, MOBILE_ID), json={"phoneNumber": "+49 1709876543", "phoneType": "mobile"}
    )
    assert_graph_error(patch, 409, "phoneNumberNotUnique")
    assert (await graph.get(pm(LYNNE, MOBILE_ID))).json()["phoneNumber"] == "+49 1701234567"


async def test_patch_into_a_held_number_conflicts_and_stores(graph: httpx.AsyncClient) -> None:
    r = await graph.patch(pm(LYNNE, MOBILE_ID), json={"phoneNumber": "+49 1709876543", "phoneType": "mobile"})
    assert_graph_error(r, 409, "phoneNumberNotUnique")
    after = (await graph.get(pm(LYNNE, MOBILE_ID))).json()
    assert after["phoneNumber"] == "+49 1709876543" and after["smsSignInState"] == "phoneNumberNotUnique"


async def test_no_conflict_when_not_sms_enabled_or_uniqueness_off(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    nora = await graph.patch(
        pm(NORA, MOBILE_ID), json={"phoneNumber": "+49 1709876543", "phoneType": "mobile"}
    )
    assert nora.status_code == 204
    assert (await graph.get(pm(NORA, MOBILE_ID))).json()["smsSignInState"] == "notAllowedByPolicy"
    # The same number as plain MFA method on a third user is fine once the switch is off.
    sim.behaviour.sms_uniqueness = False
    r = await graph.post(pm(DIEGO), json={"phoneNumber": "+49 1709876543", "phoneType": "mobile"})
    assert r.status_code == 201


async def test_alternate_mobile_gets_not_supported_and_no_uniqueness_check(graph: httpx.AsyncClient) -> None:
    r = await graph.post(pm(LYNNE), json={"phoneNumber": "+49 1709876543", "phoneType": "alternateMobile"})
    assert r.status_code == 201 and r.json()["smsSignInState"] == "notSupported"


async def test_enable_and_disable_sms_sign_in(sim: Simulator, graph: httpx.AsyncClient) -> None:
    off = await graph.post(pm(LYNNE, MOBILE_ID) + "/disableSmsSignIn")
    assert off.status_code == 204
    assert (await graph.get(pm(LYNNE, MOBILE_ID))).json()["smsSignInState"] == "notEnabled"
    on = await graph.post(pm(LYNNE, MOBILE_ID) + "/enableSmsSignIn")
    assert on.status_code == 204
    assert (await graph.get(pm(LYNNE, MOBILE_ID))).json()["smsSignInState"] == "ready"
    assert_graph_error(await graph.post(pm(NESTOR, ALT_ID) + "/enableSmsSignIn"), 400, "badRequest")
    assert_graph_error(await graph.post(pm(NORA, MOBILE_ID) + "/enableSmsSignIn"), 400, "badRequest")
    assert_graph_error(
        await graph.post(pm(DIEGO, MOBILE_ID) + "/enableSmsSignIn"), 404, "Request_ResourceNotFound"
    )
    # Sven holds Grady's number without SMS sign-in: enabling it would make the number ambiguous.
    assert_graph_error(
        await graph.post(pm(uid("d7"), MOBILE_ID) + "/enableSmsSignIn"), 409, "phoneNumberNotUnique"
    )


async def test_writes_become_visible_after_the_configured_delay(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    sim.behaviour.visibility_delay_ms = 300
    started = time.monotonic()
    r = await graph.post(pm(DIEGO), json={"phoneNumber": "+49 1701112222", "phoneType": "mobile"})
    assert r.status_code == 201
    assert (await graph.get(pm(DIEGO))).json()["value"] == []
    # A second POST is judged against the write, not against the stale read.
    assert (
        await graph.post(pm(DIEGO), json={"phoneNumber": "+49 1701113333", "phoneType": "mobile"})
    ).status_code == 400
    seen_at = None
    while time.monotonic() - started < 30.0:  # only ends the wait for a write that never shows
        if (await graph.get(pm(DIEGO))).json()["value"]:
            seen_at = time.monotonic() - started
            break
    assert seen_at is not None and seen_at >= 0.3


async def test_conflict_write_becomes_visible_after_the_delay_too(
    sim: Simulator, graph: httpx.AsyncClient
) -> None:
    sim.behaviour.visibility_delay_ms = 200
    started = time.monotonic()
    r = await graph.post(pm(DIEGO), json={"phoneNumber": "+49 1709876543", "phoneType": "mobile"})
    assert r.status_code == 409
    assert (await graph.get(pm(DIEGO))).json()["value"] == []
    while time.monotonic() - started < 30.0:  # only ends the wait for a write that never shows
        value = (await graph.get(pm(DIEGO))).json()["value"]
        if value:
            assert value[0]["smsSignInState"] == "phoneNumberNotUnique"
            break
    else:
        pytest.fail("the stored method never became visible")
    assert time.monotonic() - started >= 0.2


async def test_calls_record_what_was_asked_and_answered(sim: Simulator, graph: httpx.AsyncClient) -> None:
    r = await graph.post(
        pm(DIEGO),
        json={"phoneNumber": "+49 1701112222", "phoneType": "mobile"},
        headers={"client-request-id": "c-1"},
    )
    call = sim.calls[-1]
    assert (call.method, call.path, call.status) == ("POST", f"/v1.0{pm(DIEGO)}", 201)
    assert call.json == {"phoneNumber": "+49 1701112222", "phoneType": "mobile"}
    assert call.request_id == r.headers["request-id"] and call.client_request_id == "c-1"
    await graph.get(pm(DIEGO), params={"$filter": "phoneType eq 'mobile'"})
    assert sim.calls[-1].query == {"$filter": "phoneType eq 'mobile'"}
    assert [c.method for c in sim.graph_calls(path_regex="phoneMethods")] == ["POST", "GET"]
