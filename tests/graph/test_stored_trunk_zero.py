"""A number Graph holds with the trunk zero kept after the country code ("+49 01761234567", typed that way into a
portal or an older tool) is the same number as "+49 176 1234567": the workflow and the owner search say so."""

from __future__ import annotations

from typing import Any

import pytest

from graph.outcome import OutcomeKind
from graph.owner_search import OwnerSearch
from tests.graph.workflow_helpers import Stack, add_user, make_stack, mobile_of, request, writes

STORED = "+49 01761234567"
TYPED = "+49 176 1234567"


@pytest.fixture
async def stack(sim: Any, sim_env: dict[str, str]) -> Any:
    async for s in make_stack(sim, sim_env):
        yield s


async def test_setting_the_number_it_already_holds_with_a_trunk_zero_is_unchanged(stack: Stack) -> None:
    user = add_user(stack.sim, mobile=STORED)
    start = len(stack.sim.calls)
    out = await stack.workflow.run(request("set", user.upn, TYPED))
    assert out.kind is OutcomeKind.UNCHANGED, out.message
    assert writes(stack.sim, start) == []
    assert mobile_of(stack.sim, user) == STORED


async def test_removing_the_number_it_holds_with_a_trunk_zero_removes_it(stack: Stack) -> None:
    user = add_user(stack.sim, mobile=STORED)
    out = await stack.workflow.run(request("remove", user.upn, TYPED))
    assert out.kind is OutcomeKind.REMOVED, out.message
    assert mobile_of(stack.sim, user) is None


async def test_show_gives_the_number_without_the_trunk_zero(stack: Stack) -> None:
    user = add_user(stack.sim, mobile=STORED)
    out = await stack.workflow.show(user.upn)
    assert out.kind is OutcomeKind.SHOWN
    assert out.number == "+491761234567"


async def test_a_different_number_is_still_a_mismatch(stack: Stack) -> None:
    user = add_user(stack.sim, mobile=STORED)
    out = await stack.workflow.run(request("remove", user.upn, "+49 176 1234568"))
    assert out.kind is OutcomeKind.NUMBER_MISMATCH
    assert mobile_of(stack.sim, user) == STORED


async def test_the_owner_search_finds_a_holder_whose_number_kept_the_trunk_zero(stack: Stack) -> None:
    holder = add_user(stack.sim, name="Megan Holder", mobile="+49 01761112222", mobile_sms="ready")
    result = await OwnerSearch(stack.client, use_profile=False).find("+49 176 1112222")
    assert result.holder is not None and result.holder.id == holder.id
