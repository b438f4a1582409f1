"""The change request as the bot keeps it: plain data shared by the store, the policy, the cards and the handler.

The database rows (bot/persistence/store.py) map to and from these dataclasses; nothing here touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal


class RequestState(StrEnum):
    DRAFT = "draft"  # collected and shown on the confirmation card, not confirmed yet
    # confirmed; waits for the caller to be verified (the target or their manager answers in Teams, or the agent
    # types the one-time code the caller reads back) before it goes on to approval or the change
    AWAITING_VERIFICATION = "awaiting_verification"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"  # confirmed (policy "never") or approved by an approver; ready to execute
    EXECUTING = "executing"
    COMPLETED = "completed"  # the workflow ran and returned an outcome (which may be a refusal by Graph)
    FAILED = "failed"  # the workflow could not finish (Graph unavailable, crash); see outcome
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {
        RequestState.COMPLETED,
        RequestState.FAILED,
        RequestState.REJECTED,
        RequestState.EXPIRED,
        RequestState.CANCELLED,
    }
)

# The only transitions the store accepts. Every one is a conditional update on (id, revision).
TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    RequestState.DRAFT: frozenset(
        {
            RequestState.AWAITING_VERIFICATION,
            RequestState.AWAITING_APPROVAL,
            RequestState.APPROVED,
            RequestState.CANCELLED,
            RequestState.DRAFT,
        }
    ),
    # awaiting_verification → draft: the person who must answer could not be reached (nothing was asked; the agent
    # picks another method); → cancelled: the user said "No", the code failed five times, or the agent cancelled;
    # → expired: nobody answered in time.
    RequestState.AWAITING_VERIFICATION: frozenset(
        {
            RequestState.AWAITING_APPROVAL,
            RequestState.APPROVED,
            RequestState.CANCELLED,
            RequestState.EXPIRED,
            RequestState.DRAFT,
        }
    ),
    RequestState.AWAITING_APPROVAL: frozenset(
        {RequestState.APPROVED, RequestState.REJECTED, RequestState.EXPIRED, RequestState.CANCELLED}
    ),
    # approved → cancelled: the step that starts the change refused it (an abuse limit, or the facts re-read then:
    # the requester left the helpdesk, the target became privileged); approved → failed: Graph could not answer
    # those checks. Nothing ran in either case.
    RequestState.APPROVED: frozenset({RequestState.EXECUTING, RequestState.CANCELLED, RequestState.FAILED}),
    RequestState.EXECUTING: frozenset({RequestState.COMPLETED, RequestState.FAILED}),
    RequestState.COMPLETED: frozenset(),
    RequestState.FAILED: frozenset(),
    RequestState.REJECTED: frozenset(),
    RequestState.EXPIRED: frozenset(),
    RequestState.CANCELLED: frozenset(),
}

ApprovalPolicy = Literal["always", "privileged", "never"]


@dataclass
class Person:
    """Someone acting in Teams: the Entra object id is what every check uses; the rest is for display."""

    aad_object_id: str
    name: str
    teams_id: str | None = None  # Teams user MRI ("29:..."), for refresh.userIds
    upn: str | None = None


@dataclass
class CardRef:
    """Where a copy of a request's card was posted, so it can be updated in place."""

    role: Literal["requester", "approvers", "approver_dm", "verifier"]
    conversation_reference: dict[str, Any]  # botbuilder ConversationReference serialized to a dict
    activity_id: str | None


@dataclass
class ChangeRequest:
    id: str  # opaque, random (uuid4 hex); the only thing a card carries besides the revision
    revision: int
    state: RequestState
    action: Literal["set", "remove"]
    requester: Person
    target_id: str
    target_upn: str
    target_display_name: str
    target_is_guest: bool = False
    target_privileged: bool = False
    privilege_reasons: list[str] = field(default_factory=list)  # e.g. ["Global Administrator"]
    number: str | None = None  # E.164 as normalised; for remove: the number the agent typed
    previous_number: str | None = None  # mobile number when the request was drafted
    notify: bool = False
    language: Literal["auto", "de", "en"] = "auto"
    ticket: str | None = None
    approval_required: bool = False
    approver_group: Literal["approver", "privileged"] | None = None
    decided_by: Person | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    outcome: dict[str, Any] | None = None  # Outcome.to_json() once executed
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    locale: str = "en-US"  # the requester's locale, for texts sent later (proactive messages, expiry)
    # the short reference people read and type ("MFA-7K3Q9", bot/persistence/refs.py): unique, given by the store
    # when it creates the request (None before); cards show it instead of the id, card data carries only the id
    ref: str | None = None
    # caller verification (bot/desk/verification.py): the method the agent chose (teams | code | manager |
    # in_person; None where VERIFICATION_POLICY=none), who must answer (the target or their manager), who
    # answered (the verifier; for in_person the agent who attests) and when
    verification: str | None = None
    verifier: Person | None = None
    verified_by: Person | None = None
    verified_at: datetime | None = None
