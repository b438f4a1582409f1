"""Family 3, the authorization matrix: every role × every action × every kind of target, through the HTTP
endpoint, against what the rules say (bot/desk/policy.py's docstring, issues 3 and 4):

- request and confirm: helpdesk members only; never one's own account; a privileged target only by a member of
  the privileged group (APPROVAL_POLICY=privileged: confirming a privileged change sends it for approval, which
  counts as allowed here: the confirm was accepted);
- approve and reject: approver group (privileged group for privileged targets); never the requester (the
  requests here come from someone else) or the target;
- cancel: the requester's own waiting request, whatever their role;
- history: helpdesk, approvers and privileged approvers.

Each observed cell is compared with that rule, and the table in docs/RELIABILITY.matrix.md is generated from the
observation. The committed table must equal the observed one; RELIABILITY_UPDATE=1 rewrites it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from bot.persistence.models import ChangeRequest, Person, RequestState
from bot.persistence.store import new_request_id
from tests.bot.conftest import (
    ADELE_ID,
    ALEX,
    DIEGO_ID,
    HELPDESK_GROUP,
    ISAIAH,
    MEGAN,
    PATTI,
    PRADEEP,
    PRIVILEGED_GROUP,
    BotHarness,
    Persona,
    action_data,
)
from tests.reliability.conftest import ROOT, MakeRBot, audit_rows, last_audit_id, record_figures

MATRIX_FILE = ROOT / "docs" / "RELIABILITY.matrix.md"
APPROVERS_CONV = "19:approvers-matrix@thread.tacv2"
LYNNE = Person("00000000-0000-0000-0000-0000000000c1", "Lynne Robbins")  # the requester of others' requests

ROLES: list[tuple[str, Persona, bool]] = [  # (label, persona, add to Helpdesk)
    ("none", PRADEEP, False),
    ("helpdesk", ALEX, False),
    ("approver", MEGAN, False),
    ("privileged approver", PATTI, False),
    ("privileged approver + helpdesk", PATTI, True),
]
ACTIONS = ["request", "confirm", "approve", "reject", "cancel", "history"]
TARGETS = ["normal", "privileged", "self", "guest"]


def _groups(label: str) -> tuple[bool, bool, bool]:
    """(helpdesk, approver, privileged) of a role row."""
    return {
        "none": (False, False, False),
        "helpdesk": (True, False, False),
        "approver": (True, True, False),
        "privileged approver": (False, True, True),
        "privileged approver + helpdesk": (True, True, True),
    }[label]


def expected(role: str, action: str, target: str) -> bool:
    helpdesk, approver, privileged = _groups(role)
    if action in ("request", "confirm"):
        return helpdesk and target != "self" and (target != "privileged" or privileged)
    if action in ("approve", "reject"):
        return target != "self" and (privileged if target == "privileged" else approver or privileged)
    if action == "cancel":
        return True
    return helpdesk or approver or privileged  # history


def _target(kind: str, actor: Persona) -> tuple[str, str, str]:
    """(id, upn, display name) of the target of a kind."""
    return {
        "normal": (DIEGO_ID, "diego.siciliani@contoso.example", "Diego Siciliani"),
        "privileged": (ISAIAH.aad, ISAIAH.upn, ISAIAH.name),
        "self": (actor.aad, actor.upn, actor.name),
        "guest": (ADELE_ID, "adele_partner.example#EXT#@contoso.example", "Adele Vance"),
    }[kind]


async def _request_in_store(
    bot: BotHarness, requester: Person, target: tuple[str, str, str], kind: str, *, awaiting: bool
) -> ChangeRequest:
    privileged = kind == "privileged"
    req = ChangeRequest(
        id=new_request_id(),
        revision=1,
        state=RequestState.DRAFT,
        action="set",
        requester=requester,
        target_id=target[0],
        target_upn=target[1],
        target_display_name=target[2],
        target_is_guest=kind == "guest",
        target_privileged=privileged,
        privilege_reasons=["Global Administrator"] if privileged else [],
        number="+491705550177",
        approval_required=awaiting,
        approver_group=("privileged" if privileged else "approver") if awaiting else None,
    )
    req = await bot.store.create_request(req, actor=requester)
    if awaiting:
        req = await bot.store.transition(
            req.id,
            req.revision,
            RequestState.AWAITING_APPROVAL,
            actor=requester,
            event="submitted",
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
    return req


async def _cell(bot: BotHarness, persona: Persona, action: str, kind: str) -> bool:
    actor = Person(persona.aad, persona.name)
    target = _target(kind, persona)
    if action == "request":
        data = {
            "verb": "mfa.review",
            "targetUserText": target[1],
            "number": "+49 170 5550188",
            "action": "set",
        }
        reply = await bot.invoke(persona, "mfa.review", data)
        assert reply.status == 200, reply
        return action_data(reply.card, "mfa.confirm") is not None
    if action == "confirm":
        req = await _request_in_store(bot, actor, target, kind, awaiting=False)
        reply = await bot.invoke(
            persona, "mfa.confirm", {"verb": "mfa.confirm", "requestId": req.id, "rev": 1}
        )
        assert reply.status == 200, reply
        after = await bot.store.get_request(req.id)
        assert after is not None
        return after.state is not RequestState.DRAFT
    if action in ("approve", "reject"):
        req = await _request_in_store(bot, LYNNE, target, kind, awaiting=True)
        data = {"verb": f"mfa.{action}", "requestId": req.id, "rev": req.revision, "reason": "matrix"}
        reply = await bot.invoke(persona, f"mfa.{action}", data)
        assert reply.status == 200, reply
        after = await bot.store.get_request(req.id)
        assert after is not None
        moved = after.state is not RequestState.AWAITING_APPROVAL
        if moved:
            assert after.decided_by is not None and after.decided_by.aad_object_id == persona.aad
            wanted = (
                {RequestState.REJECTED}
                if action == "reject"
                else {
                    RequestState.APPROVED,
                    RequestState.EXECUTING,
                    RequestState.COMPLETED,
                    RequestState.FAILED,
                }
            )
            assert after.state in wanted, after.state
        return moved
    if action == "cancel":
        req = await _request_in_store(bot, actor, target, kind, awaiting=True)
        reply = await bot.invoke(
            persona, "mfa.cancel", {"verb": "mfa.cancel", "requestId": req.id, "rev": req.revision}
        )
        assert reply.status == 200, reply
        after = await bot.store.get_request(req.id)
        assert after is not None
        return after.state is RequestState.CANCELLED
    # history
    mark = await last_audit_id(bot.store)
    reply = await bot.message(persona, f"history {target[1]}")
    assert reply.status in (200, 201), reply
    rows = await audit_rows(bot.store, mark)
    return any(r["event"] == "history_viewed" and r["actor_aad_id"] == persona.aad for r in rows)


def render(observed: dict[tuple[str, str, str], bool], reasons: dict[tuple[str, str, str], str]) -> str:
    lines = [
        "<!-- Generated by tests/reliability/test_authorization_matrix.py from observed behaviour; do not edit. -->",
        "",
        "| Role | Target | " + " | ".join(ACTIONS) + " |",
        "|---|---|" + "---|" * len(ACTIONS),
    ]
    for role, _, _ in ROLES:
        for kind in TARGETS:
            cells = []
            for action in ACTIONS:
                key = (role, action, kind)
                cells.append("allowed" if observed[key] else f"refused ({reasons.get(key, '?')})")
            lines.append(f"| {role} | {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


async def test_every_role_action_and_target_is_allowed_or_refused_as_specified(make_rbot: MakeRBot) -> None:
    bot = await make_rbot(
        APPROVAL_POLICY="privileged",
        APPROVER_CONVERSATION_ID=APPROVERS_CONV,
        ROLE_CACHE_SECONDS="0",
        MAX_CHANGES_PER_REQUESTER_PER_HOUR="0",
        TARGET_COOLDOWN_MINUTES="0",
    )
    reply = await bot.conversation_update(MEGAN, conversation_id=APPROVERS_CONV, conversation_type="channel")
    assert reply.status in (200, 201)
    helpdesk = bot.sim.tenant.groups[HELPDESK_GROUP]
    # Lynne asks for the requests others decide: a privileged helpdesk agent, so that the facts re-read at an
    # approval click (the requester's groups, the target's privilege) let every kind of target go ahead
    helpdesk.members.append(LYNNE.aad_object_id)
    bot.sim.tenant.groups[PRIVILEGED_GROUP].members.append(LYNNE.aad_object_id)
    observed: dict[tuple[str, str, str], bool] = {}
    reasons: dict[tuple[str, str, str], str] = {}
    refused_unaudited: list[tuple[str, str, str]] = []
    for role, persona, add_helpdesk in ROLES:
        if add_helpdesk and persona.aad not in helpdesk.members:
            helpdesk.members.append(persona.aad)
        for action in ACTIONS:
            for kind in TARGETS:
                mark = await last_audit_id(bot.store)
                key = (role, action, kind)
                observed[key] = await _cell(bot, persona, action, kind)
                if not observed[key]:
                    refusals = [
                        r
                        for r in await audit_rows(bot.store, mark)
                        if r["event"] in ("refused", "approval_refused") and r["actor_aad_id"] == persona.aad
                    ]
                    if refusals:
                        reasons[key] = str((refusals[-1]["details"] or {}).get("reason", "?"))
                    else:
                        refused_unaudited.append(key)
    mismatches = {k: v for k, v in observed.items() if v != expected(*k)}
    assert mismatches == {}, mismatches
    assert refused_unaudited == [], f"refusals without an audit row: {refused_unaudited}"

    table = render(observed, reasons)
    record_figures(
        "authorization_matrix",
        {
            "cells": len(observed),
            "allowed": sum(observed.values()),
            "refused": len(observed) - sum(observed.values()),
            "mismatches": 0,
        },
    )
    if os.environ.get("RELIABILITY_UPDATE") == "1":
        MATRIX_FILE.write_text(table, encoding="utf-8")
    committed = MATRIX_FILE.read_text(encoding="utf-8") if MATRIX_FILE.exists() else ""
    assert committed == table, (
        f"{MATRIX_FILE.relative_to(ROOT)} does not match the observed behaviour; "
        "rerun with RELIABILITY_UPDATE=1 and review the diff"
    )
