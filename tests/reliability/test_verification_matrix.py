"""Family 3, the authorization matrix of caller verification (next to test_authorization_matrix.py, in its style):
every person who could send one × every verification action, through the HTTP endpoint, with verification on,
against what the rules say (bot/desk/verification.py, issue 11):

- "Yes, I asked for this" / "No, I did not ask" (mfa.verify.yes / mfa.verify.no): only the person asked, from the
  configured tenant: the target for the Teams method, the target's manager (from the directory) for the manager
  method. Not the requester, not an approver or privileged approver, not anyone else, not the person asked
  signed in to another tenant;
- the one-time code (mfa.verify.code, the right code): only the requester of that request;
- `unlock <user>` (lifting the lock a "No" put on the user): only a privileged approver.

Each cell starts from a fresh request waiting for the caller's verification (approval needed afterwards, so an
allowed "Yes" moves it to the approvers and nothing reaches Graph) or, for unlock, a fresh lock. Allowed: the
request moved as the action says (verified by that person, or cancelled with the user locked), or the lock is
gone. Refused: the request's state and revision are what they were, the lock is still there, and a `refused` audit
row names the person and the reason. No cell writes to Graph. The table in docs/RELIABILITY.verification-matrix.md
is generated from the observation; RELIABILITY_UPDATE=1 rewrites it.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime, timedelta

from bot.desk.verification import hash_code
from bot.persistence.models import ChangeRequest, Person, RequestState
from bot.persistence.store import new_request_id
from tests.bot.conftest import (
    ALEX,
    ISAIAH,
    LYNNE,  # the target
    LYNNE_ID,
    MEGAN,
    PATTI,
    PRADEEP,
    BotHarness,
    Persona,
    graph_writes,
)
from tests.reliability.conftest import ROOT, MakeRBot, audit_rows, last_audit_id, record_figures

MATRIX_FILE = ROOT / "docs" / "RELIABILITY.verification-matrix.md"
APPROVERS_CONV = "19:approvers-verification-matrix@thread.tacv2"
POLICY = "ordinary=teams,code,manager;privileged=teams,manager+approval"
OTHER_TENANT = "0badc0de-0000-4000-8000-000000000bad"
MANAGER = PRADEEP  # Lynne's manager in the directory for this test
CODE = "482913"

ROLES: list[tuple[str, Persona, str | None]] = [  # (label, persona, tenant when not the configured one)
    ("requester (helpdesk)", ALEX, None),
    ("target", LYNNE, None),
    ("target's manager", MANAGER, None),
    ("approver", MEGAN, None),
    ("privileged approver", PATTI, None),
    ("other user", ISAIAH, None),
    ("target, other tenant", LYNNE, OTHER_TENANT),
    ("manager, other tenant", MANAGER, OTHER_TENANT),
]
ACTIONS = ["yes (teams)", "no (teams)", "yes (manager)", "no (manager)", "code", "unlock"]


def expected(role: str, action: str) -> bool:
    if action in ("yes (teams)", "no (teams)"):
        return role == "target"
    if action in ("yes (manager)", "no (manager)"):
        return role == "target's manager"
    if action == "code":
        return role == "requester (helpdesk)"
    return role == "privileged approver"  # unlock


def person(who: Persona) -> Person:
    return Person(aad_object_id=who.aad, name=who.name, teams_id=who.teams_id, upn=who.upn)


async def waiting_request(bot: BotHarness, method: str) -> ChangeRequest:
    """Alex's request for Lynne, waiting for the caller's verification by `method` (approval needed after)."""
    alex = person(ALEX)
    req = ChangeRequest(
        id=new_request_id(),
        revision=1,
        state=RequestState.DRAFT,
        action="set",
        requester=alex,
        target_id=LYNNE.aad,
        target_upn=LYNNE.upn,
        target_display_name=LYNNE.name,
        number="+491705550177",
        approval_required=True,
        approver_group="approver",
        verification=method,
    )
    req = await bot.store.create_request(req, actor=alex)
    verifier = person(MANAGER) if method == "manager" else person(LYNNE)
    req = await bot.store.transition(
        req.id,
        req.revision,
        RequestState.AWAITING_VERIFICATION,
        actor=alex,
        event="verification_started",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        verifier=verifier,
    )
    if method == "code":
        salt = secrets.token_hex(16)
        await bot.store.save_verification(
            req.id, code_salt=salt, code_hash=hash_code(salt, CODE), sent_via="teams"
        )
    return req


async def _cell(bot: BotHarness, persona: Persona, tenant: str | None, action: str) -> bool:
    kw = {"tenant": tenant} if tenant else {}
    if action == "unlock":
        until = datetime.now(UTC) + timedelta(hours=24)
        await bot.store.lock_target(
            LYNNE.aad, until, request_id=None, actor=None, target_upn=LYNNE.upn, details={"reason": "matrix"}
        )
        reply = await bot.message(persona, f"unlock {LYNNE.upn}", **kw)
        assert reply.status in (200, 201), reply
        lifted = await bot.store.target_lock(LYNNE.aad, datetime.now(UTC)) is None
        if not lifted:
            await _lift(bot)
        return lifted
    method = "code" if action == "code" else ("manager" if "manager" in action else "teams")
    req = await waiting_request(bot, method)
    if action == "code":
        verb = "mfa.verify.code"
        data = {"verb": verb, "requestId": req.id, "rev": req.revision, "code": CODE}
    else:
        verb = "mfa.verify.yes" if action.startswith("yes") else "mfa.verify.no"
        data = {"verb": verb, "requestId": req.id, "rev": req.revision}
    reply = await bot.invoke(persona, verb, data, **kw)
    assert reply.status == 200, reply
    after = await bot.store.get_request(req.id)
    assert after is not None
    if after.state is RequestState.AWAITING_VERIFICATION and after.verified_by is None:
        assert after.revision == req.revision  # refused: nothing about the request changed
        assert await bot.store.target_lock(LYNNE.aad, datetime.now(UTC)) is None
        return False
    if verb == "mfa.verify.no":
        assert after.state is RequestState.CANCELLED, after.state
        assert after.decided_by is not None and after.decided_by.aad_object_id == persona.aad
        assert await bot.store.target_lock(LYNNE.aad, datetime.now(UTC)) is not None  # the user is locked
        await _lift(bot)
    else:
        assert after.verified_by is not None
        assert after.verified_by.aad_object_id == (req.verifier.aad_object_id if req.verifier else "")
        assert after.state in (RequestState.AWAITING_VERIFICATION, RequestState.AWAITING_APPROVAL), (
            after.state
        )
    return True


async def _lift(bot: BotHarness) -> None:
    await bot.store.lift_target_lock(
        LYNNE.aad, actor=person(PATTI), target_upn=LYNNE.upn, details={"reason": "matrix reset"}
    )


def render(observed: dict[tuple[str, str], bool], reasons: dict[tuple[str, str], str]) -> str:
    lines = [
        "<!-- Generated by tests/reliability/test_verification_matrix.py from observed behaviour; do not edit. -->",
        "",
        "Caller verification: who may answer the verification card (Teams method: the target is asked; manager "
        "method: the target's manager is asked), type the one-time code, or `unlock` a user.",
        "",
        "| Who | " + " | ".join(ACTIONS) + " |",
        "|---|" + "---|" * len(ACTIONS),
    ]
    for role, _, _ in ROLES:
        cells = []
        for action in ACTIONS:
            key = (role, action)
            cells.append("allowed" if observed[key] else f"refused ({reasons.get(key, '?')})")
        lines.append(f"| {role} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


async def test_only_the_person_asked_the_requester_or_a_privileged_approver_may_act(
    make_rbot: MakeRBot,
) -> None:
    bot = await make_rbot(
        VERIFICATION_POLICY=POLICY,
        APPROVAL_POLICY="never",
        APPROVER_CONVERSATION_ID=APPROVERS_CONV,
        ROLE_CACHE_SECONDS="0",
    )
    reply = await bot.conversation_update(MEGAN, conversation_id=APPROVERS_CONV, conversation_type="channel")
    assert reply.status in (200, 201)
    bot.sim.tenant.users[LYNNE_ID].manager_id = MANAGER.aad
    observed: dict[tuple[str, str], bool] = {}
    reasons: dict[tuple[str, str], str] = {}
    refused_unaudited: list[tuple[str, str]] = []
    for role, persona, tenant in ROLES:
        for action in ACTIONS:
            mark = await last_audit_id(bot.store)
            key = (role, action)
            observed[key] = await _cell(bot, persona, tenant, action)
            if not observed[key]:
                refusals = [
                    r
                    for r in await audit_rows(bot.store, mark)
                    if r["event"] == "refused" and r["actor_aad_id"] == persona.aad
                ]
                if refusals:
                    reasons[key] = str((refusals[-1]["details"] or {}).get("reason", "?"))
                else:
                    refused_unaudited.append(key)
    mismatches = {k: v for k, v in observed.items() if v != expected(*k)}
    assert mismatches == {}, mismatches
    assert refused_unaudited == [], f"refusals without an audit row: {refused_unaudited}"
    assert graph_writes(bot.sim) == []

    table = render(observed, reasons)
    record_figures(
        "verification_matrix",
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
