"""Owner search against the simulator: profile pre-check, streamed report scan, $batch reads, early stop."""

from __future__ import annotations

from typing import Any

import pytest

from graph.owner_search import OwnerSearch, SearchProgress, portal_link, profile_forms
from tests.conftest import TEST_CLIENT_ID
from tests.graph.simulator_helpers import uid
from tests.graph.workflow_helpers import Stack, add_user, make_stack

NUMBER = "+49 1765550077"
DIRK_DISABLED = uid("d8")  # disabled account of the test tenant, holds +49 1708880006 for SMS sign-in
HANNA_HIDDEN_NUMBER = "+49 1708880003"  # enabled, found only by the report scan (no profile phone)


@pytest.fixture
async def stack(sim: Any, sim_env: dict[str, str]) -> Any:
    sim.behaviour.update({"report_throttle": False})
    async for s in make_stack(sim, sim_env):
        yield s


def fill(sim: Any, count: int) -> list[Any]:
    return [add_user(sim, name=f"Filler {i}", mobile=f"+49 1520000{i:04d}") for i in range(count)]


def report_calls(sim: Any, start: int = 0) -> list[Any]:
    return [c for c in sim.calls[start:] if "userRegistrationDetails" in c.path]


def test_profile_forms_cover_the_forms_graph_may_hold() -> None:
    assert profile_forms("+49 1701234567") == ["+49 1701234567", "+49 170 1234567", "+491701234567"]


def test_portal_link_points_at_the_users_entra_profile() -> None:
    assert portal_link("abc") == (
        "https://entra.microsoft.com/#view/Microsoft_AAD_UsersAndTenants/UserProfileMenuBlade/~/overview/userId/abc"
    )


@pytest.mark.parametrize("profile", ["+49 176 5550077", "+49 1765550077", "+491765550077"])
async def test_profile_match_finds_the_holder_without_reading_the_report(stack: Stack, profile: str) -> None:
    holder = add_user(stack.sim, name="Profile", mobile=NUMBER, mobile_sms="ready", mobilePhone=profile)
    start = len(stack.sim.calls)
    result = await OwnerSearch(stack.client).find(NUMBER)
    assert result.status == "found" and result.holder is not None
    assert result.holder.id == holder.id
    assert report_calls(stack.sim, start) == []


async def test_business_phone_match_finds_the_holder(stack: Stack) -> None:
    holder = add_user(
        stack.sim, name="Desk", mobile=NUMBER, mobile_sms="ready", businessPhones=["+49 176 5550077"]
    )
    result = await OwnerSearch(stack.client).find(NUMBER)
    assert result.holder is not None and result.holder.id == holder.id


async def test_scan_streams_pages_and_stops_at_the_first_match(stack: Stack) -> None:
    fill(stack.sim, 30)
    holder = add_user(stack.sim, name="Hidden Holder", mobile=NUMBER, mobile_sms="ready")
    fill(stack.sim, 60)  # pages after the holder are never read
    start = len(stack.sim.calls)
    seen: list[SearchProgress] = []
    result = await OwnerSearch(stack.client, page_size=10, concurrency=2, queued_pages=1).find(
        NUMBER, progress=seen.append
    )
    assert result.status == "found" and result.holder is not None
    assert result.holder.id == holder.id
    assert result.holder.phone_type == "mobile" and result.holder.sms_sign_in_state == "ready"
    pages = report_calls(stack.sim, start)
    total_registered = sum(1 for u in stack.sim.tenant.users.values() if u.phones.get("mobile"))
    assert 1 < len(pages) < total_registered / 10
    assert seen[0].stage == "profile" and seen[-1].stage == "scan" and seen[-1].found
    batches = [c for c in stack.sim.calls[start:] if c.path.endswith("$batch")]
    assert batches and all(len(c.json["requests"]) <= 20 for c in batches)


async def test_the_target_itself_is_never_named_the_holder(stack: Stack) -> None:
    target = add_user(stack.sim, name="Target", mobile=NUMBER, mobile_sms="ready", mobilePhone=NUMBER)
    result = await OwnerSearch(stack.client, page_size=50).find(NUMBER, exclude_user_id=target.id)
    assert result.holder is None or result.holder.id != target.id


async def test_an_mfa_only_match_is_reported_when_nobody_holds_it_for_sms_sign_in(stack: Stack) -> None:
    mfa_only = add_user(stack.sim, name="Mfa Only", mobile=NUMBER, mobile_sms="notAllowedByPolicy")
    result = await OwnerSearch(stack.client, page_size=50).find(NUMBER)
    assert result.status == "found" and result.holder is not None
    assert result.holder.id == mfa_only.id and result.holder.sms_sign_in_state == "notAllowedByPolicy"


async def test_nobody_holding_the_number_suggests_a_deleted_user(stack: Stack) -> None:
    fill(stack.sim, 5)
    result = await OwnerSearch(stack.client, page_size=50).find("+49 176 0000099")
    assert result.status == "not_found" and result.holder is None
    assert "deleted or soft-deleted" in result.message
    assert result.scanned >= 5


async def test_per_item_429_in_batch_is_retried_and_the_holder_still_found(stack: Stack) -> None:
    fill(stack.sim, 10)
    holder = add_user(stack.sim, name="Throttled Holder", mobile=NUMBER, mobile_sms="ready")
    stack.sim.faults.inject(
        "GET", rf"/users/{holder.id}/authentication/phoneMethods$", 429, times=2, retry_after=0.1
    )
    result = await OwnerSearch(stack.client, page_size=50).find(NUMBER)
    assert result.holder is not None and result.holder.id == holder.id
    throttled = [c for c in stack.sim.calls if c.in_batch and c.status == 429]
    assert len(throttled) == 2


async def test_report_throttle_is_honoured_with_retry_after(stack: Stack) -> None:
    stack.sim.behaviour.update({"report_throttle": True, "report_limit": 2, "report_window_s": 1.0})
    fill(stack.sim, 20)
    holder = add_user(stack.sim, name="Late Holder", mobile=NUMBER, mobile_sms="ready")
    result = await OwnerSearch(stack.client, page_size=5).find(NUMBER)
    assert result.holder is not None and result.holder.id == holder.id
    assert any(c.status == 429 for c in report_calls(stack.sim))


async def test_a_report_that_fails_otherwise_fails_the_search_with_the_error(stack: Stack) -> None:
    stack.sim.faults.inject("GET", r"userRegistrationDetails", 400, times=1)
    result = await OwnerSearch(stack.client).find("+49 176 0000098")
    assert result.status == "failed"
    assert result.error is not None and result.error.status == 400


async def test_a_disabled_account_holding_the_number_is_found_and_named_disabled(stack: Stack) -> None:
    start = len(stack.sim.calls)
    result = await OwnerSearch(stack.client).find("+49 170 8880006")
    assert result.status == "found" and result.holder is not None
    assert result.holder.id == DIRK_DISABLED and result.holder.account_enabled is False
    assert result.holder.sms_sign_in_state == "ready"
    assert "disabled account" in result.message
    listed = [c for c in stack.sim.calls[start:] if c.path == "/v1.0/users" and c.status == 200]
    assert any(c.query.get("$filter") == "accountEnabled eq false" for c in listed)
    assert report_calls(stack.sim, start) == []  # found before the report, which would never list him


async def test_a_disabled_profile_match_is_named_disabled(stack: Stack) -> None:
    holder = add_user(
        stack.sim,
        name="Gone Profile",
        mobile=NUMBER,
        mobile_sms="ready",
        mobilePhone=NUMBER,
        accountEnabled=False,
    )
    result = await OwnerSearch(stack.client).find(NUMBER)
    assert result.holder is not None and result.holder.id == holder.id
    assert result.holder.account_enabled is False


async def test_an_enabled_holder_found_by_the_scan_is_named_enabled(stack: Stack) -> None:
    result = await OwnerSearch(stack.client).find(HANNA_HIDDEN_NUMBER)
    assert result.status == "found" and result.holder is not None
    assert result.holder.id == uid("d4") and result.holder.account_enabled is True
    assert result.disabled_checked >= 1 and "enabled account" in result.message


async def test_a_tenant_without_p1_says_the_holder_cannot_be_searched(stack: Stack) -> None:
    stack.sim.behaviour.update({"p1_licensed": False})
    result = await OwnerSearch(stack.client).find(HANNA_HIDDEN_NUMBER)
    assert result.status == "not_licensed" and result.holder is None
    assert (
        result.error is not None
        and result.error.code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
    )
    assert "cannot be searched in this tenant" in result.message and "P1 or P2" in result.message
    assert "deleted" not in result.message
    assert result.disabled_checked >= 1


async def test_a_tenant_without_p1_still_finds_a_disabled_holder(stack: Stack) -> None:
    stack.sim.behaviour.update({"p1_licensed": False})
    result = await OwnerSearch(stack.client).find("+49 170 8880006")
    assert result.status == "found" and result.holder is not None and result.holder.id == DIRK_DISABLED


async def test_the_report_refused_without_audit_log_read_all_is_not_permitted(
    sim: Any, sim_env: dict[str, str]
) -> None:
    app = sim.tenant.app(TEST_CLIENT_ID)
    app.roles = [r for r in app.roles if r != "AuditLog.Read.All"]  # phone-method permissions alone
    sim.behaviour.update({"report_throttle": False})
    async for stack in make_stack(sim, sim_env):
        result = await OwnerSearch(stack.client).find(HANNA_HIDDEN_NUMBER)
    assert result.status == "not_permitted" and result.holder is None
    assert result.error is not None and result.error.status == 403
    assert result.error.url is not None and "userRegistrationDetails" in result.error.url
