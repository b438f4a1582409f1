"""Caller verification: before any change, the desk makes sure the person on the phone is the user.

The seam to Teams delivery: the desk asks a `Reacher` to put a card in front of a person in Teams (1:1) and gets a
`Delivery` back: delivered with the CardRef of the sent card (role "verifier", for in-place updates), or the reason
it was not. bot/teams/reach.py implements it; tests pass their own. None means Teams confirmation is unavailable
("not_configured").

The use case, CallerVerification: Confirm puts a request whose caller must be verified (teams, code, manager) into
awaiting_verification and asks the person; their Yes moves it on to approval or the change, their No cancels it,
locks the user and alerts the approvers; the agent types a one-time code instead for `code`; the sweeper expires
what nobody answered. In person is attested at Confirm (bot/desk/drafts.py) and always needs an approver.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from bot.desk.context import REQUEST_ID, Refused
from bot.persistence.models import CardRef, ChangeRequest, Person, RequestState
from bot.views import cards, texts

if TYPE_CHECKING:
    from bot.desk.context import Caller, Desk

log = logging.getLogger(__name__)

# Delivery.reason values (each has a text "verify.undelivered.<reason>" in bot/views/texts.py)
UNDELIVERED_REASONS = (
    "not_configured",
    "app_not_in_catalog",
    "blocked_by_policy",
    "permission_missing",
    "graph_error",
    "send_failed",
)


@dataclass(frozen=True)
class Recipient:
    """Who must get the card."""

    aad_object_id: str
    display_name: str
    user_principal_name: str


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    card_ref: CardRef | None = None  # where the card went (for in-place updates: role "verifier")
    # when not delivered: "not_configured" (no TEAMS_APP_ID and no stored conversation) | "app_not_in_catalog" |
    # "blocked_by_policy" | "permission_missing" | "graph_error" | "send_failed"
    reason: str | None = None
    detail: str = ""  # for logs/admins only


class Reacher(Protocol):
    async def send_card(self, recipient: Recipient, card: dict[str, Any]) -> Delivery: ...


# ------------------------------------------------------------------------------------------------ the use case

VERIFICATION_METHODS = ("teams", "code", "manager", "in_person")
ASKED_IN_TEAMS = ("teams", "manager")  # someone answers a card in Teams
ASKED = ("teams", "code", "manager")  # the request waits for the caller's verification
CODE_DIGITS = 6
MAX_CODE_ATTEMPTS = 5

EVENT_STARTED = "verification_started"
EVENT_CODE_SENT = "verification_code_sent"
EVENT_WRONG_CODE = "verification_wrong_code"
EVENT_UNDELIVERED = "verification_undelivered"
EVENT_VERIFIED = "caller_verified"
EVENT_ATTESTED = "caller_attested"
EVENT_REFUSED = "verification_refused"
EVENT_FAILED = "verification_failed"
EVENT_EXPIRED = "verification_expired"
EVENT_ALERT = "security_alert"
EVENT_RESUMED = "verification_resumed"  # a verified request a crash left waiting, moved on by the sweeper

# Crash recovery (the sweeper): a request whose caller was verified but that did not move on to approval or the
# change within VERIFIED_GRACE was left behind between the answer and the move (the process died there).
VERIFIED_GRACE = timedelta(minutes=2)


def method_names(lang: str, methods: Any) -> str:
    """The ways to verify a caller, in words ("confirmation in Teams, one-time code")."""
    from bot.views import texts

    return ", ".join(texts.t(lang, f"verify.method.{m}") for m in methods)


def hash_code(salt: str, code: str) -> str:
    """HMAC-SHA256 of the code under the request's own random salt: the database never holds the code."""
    return hmac.new(bytes.fromhex(salt), code.encode("ascii"), hashlib.sha256).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _utc(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "?"


def _hhmm(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%H:%M UTC")


class CallerVerification:
    """Verifying the caller before any change: started by Confirm, answered by the target (or their manager) in
    Teams or by the code the agent types, ended by expiry, a refusal, five wrong codes or Cancel. Every step is
    a conditional move of the request with its audit row; the code is never in a log, a card of the agent or
    the audit trail."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    # ---------------------------------------------------------------------------------------------- start
    async def start(self, caller: Caller, req: ChangeRequest, fields: dict[str, Any]) -> dict[str, Any]:
        """Confirm of a draft whose caller must be verified: the request waits, the person asked gets the card
        (or the code); when nobody can be reached the agent gets the draft back with the reason."""
        from bot.persistence.store import InvalidTransition, StaleRevision

        lang = caller.lang
        method = req.verification or "teams"
        if method == "manager":
            verifier, problem = await self._manager(req)
            if problem is not None:
                key, params = problem
                return await self.draft_with_notice(caller, req, key, **params)
            assert verifier is not None
        else:
            verifier = Person(aad_object_id=req.target_id, name=req.target_display_name, upn=req.target_upn)
        settings = self.desk.settings
        minutes = int(
            settings.verification_code_minutes if method == "code" else settings.verification_timeout_minutes
        )
        expires = self.desk.clock() + timedelta(minutes=minutes)
        try:
            pending = await self.desk.store.transition(
                req.id,
                req.revision,
                RequestState.AWAITING_VERIFICATION,
                actor=caller.person,
                event=EVENT_STARTED,
                details={
                    "method": method,
                    "verifier_id": verifier.aad_object_id,
                    "verifier": verifier.name[:200],
                    "expires_at": expires.isoformat(),
                    "old_number": req.previous_number,
                    "new_number": req.number,
                    "action": req.action,
                },
                expires_at=expires,
                verifier=verifier,
                verified_by=None,
                verified_at=None,
                **fields,
            )
        except (StaleRevision, InvalidTransition):
            current = await self.desk.store.get_request(req.id)
            if current is not None and current.state is not RequestState.DRAFT:
                return self.requester_view(lang, current)
            raise Refused("refusal.stale", request=req) from None
        if method == "code":
            return await self._send_code(caller, pending, verifier, minutes)
        card = cards.verify_request_card(self.verifier_lang(pending), pending, manager=method == "manager")
        delivery = await self._deliver(verifier, card)
        if not delivery.delivered:
            reason = self._reason(delivery)
            text = texts.t(
                lang,
                "verify.undelivered",
                name=verifier.name,
                reason=texts.t(lang, f"verify.undelivered.{reason}"),
            )
            return await self._back_to_draft(caller, pending, {"reason": reason, "teams": reason}, text)
        await self.desk.store.save_verification(pending.id, sent_via="teams", card_ref=delivery.card_ref)
        return cards.verification_waiting_card(lang, pending)

    async def _manager(self, req: ChangeRequest) -> tuple[Person | None, tuple[str, dict[str, Any]] | None]:
        """The target's manager from the directory (read now), or why they cannot confirm."""
        manager = await self.desk.directory.manager(req.target_id)
        name = req.target_display_name
        if manager is None:
            return None, ("verify.no_manager", {"name": name})
        if manager.id.lower() == req.requester.aad_object_id.lower():
            return None, ("verify.manager_is_requester", {"name": name})
        if manager.id.lower() == req.target_id.lower():
            return None, ("verify.manager_is_target", {"name": name})
        if not manager.account_enabled or manager.user_type.lower() != "member":
            return None, ("verify.manager_unusable", {"name": name, "manager": manager.display_name})
        person = Person(aad_object_id=manager.id, name=manager.display_name, upn=manager.user_principal_name)
        return person, None

    async def _send_code(
        self, caller: Caller, pending: ChangeRequest, verifier: Person, minutes: int
    ) -> dict[str, Any]:
        """A one-time code to the target: in Teams when the bot can reach them, else to their mailbox (never to
        the number asked for). Only its salted hash is kept."""
        lang = caller.lang
        code = new_code()
        salt = secrets.token_hex(16)
        delivery = await self._deliver(
            verifier, cards.verify_code_card(self.verifier_lang(pending), pending, code)
        )
        via: str | None = "teams" if delivery.delivered else None
        mail_reason = ""
        if via is None:
            via, mail_reason = await self._mail_code(pending, code, minutes)
        if via is None:
            reason = self._reason(delivery)
            text = texts.t(
                lang,
                "verify.code_undelivered",
                name=verifier.name,
                reason=texts.t(lang, f"verify.undelivered.{reason}").rstrip("."),
                mail=texts.t(lang, f"verify.mail.{mail_reason}"),
            )
            return await self._back_to_draft(caller, pending, {"teams": reason, "mail": mail_reason}, text)
        await self.desk.store.save_verification(
            pending.id,
            code_salt=salt,
            code_hash=hash_code(salt, code),
            sent_via=via,
            card_ref=delivery.card_ref if delivery.delivered else None,
        )
        del code
        await self.desk.store.audit(
            EVENT_CODE_SENT,
            actor=None,
            request_id=pending.id,
            target_id=pending.target_id,
            target_upn=pending.target_upn,
            details={"via": via, "valid_minutes": minutes},
        )
        return cards.verification_waiting_card(lang, pending, via=via)

    async def _mail_code(self, req: ChangeRequest, code: str, minutes: int) -> tuple[str | None, str]:
        """(\"mail\", "") when the code went to the target's mailbox, else (None, why not)."""
        from graph.outcome import NotificationStatus

        notifier = getattr(self.desk.graph, "notifier", None)
        if notifier is None:
            return None, "not_configured"
        try:
            user = await self.desk.directory.find_user(req.target_id)
            if user is None:
                return None, "skipped_no_mail"
            sent = await notifier.send_verification_code(
                user, code, valid_minutes=minutes, language_override=req.language
            )
        except Exception as exc:  # noqa: BLE001  (the code did not go out: the agent gets the draft back)
            log.warning("request %s: mailing the one-time code failed (%s)", req.id, type(exc).__name__)
            return None, "failed"
        if sent.status is NotificationStatus.SENT:
            return "mail", ""
        return None, "skipped_no_mail" if sent.status is NotificationStatus.SKIPPED_NO_MAIL else "failed"

    async def _deliver(self, person: Person, card: dict[str, Any]) -> Delivery:
        reacher = self.desk.reacher
        if reacher is None:
            return Delivery(delivered=False, reason="not_configured")
        recipient = Recipient(
            aad_object_id=person.aad_object_id,
            display_name=person.name,
            user_principal_name=person.upn or "",
        )
        try:
            return await reacher.send_card(recipient, card)
        except Exception:  # noqa: BLE001  (the reacher should never raise; if it does, nothing was delivered)
            log.exception("reaching a person in Teams failed")
            return Delivery(delivered=False, reason="send_failed")

    @staticmethod
    def _reason(delivery: Delivery) -> str:
        return delivery.reason if delivery.reason in UNDELIVERED_REASONS else "send_failed"

    async def _back_to_draft(
        self, caller: Caller, pending: ChangeRequest, details: dict[str, Any], text: str
    ) -> dict[str, Any]:
        """Nobody could be asked: the request is a draft again (nothing was asked, nothing changed); the agent
        sees why and picks another way with Edit."""
        from bot.persistence.store import InvalidTransition, StaleRevision

        log.warning(
            "request %s: the caller could not be verified by %s: %s",
            pending.id,
            pending.verification,
            details,
        )
        try:
            draft = await self.desk.store.transition(
                pending.id,
                pending.revision,
                RequestState.DRAFT,
                actor=None,
                event=EVENT_UNDELIVERED,
                details={"method": pending.verification, **{k: str(v)[:60] for k, v in details.items()}},
                expires_at=None,
                verifier=None,
            )
        except (StaleRevision, InvalidTransition):
            current = await self.desk.store.get_request(pending.id)
            return self.requester_view(caller.lang, current or pending)
        card = cards.confirmation_card(caller.lang, draft, None, warnings=[])
        return cards.with_notice(card, text)

    async def draft_with_notice(
        self, caller: Caller, req: ChangeRequest, key: str, **params: Any
    ) -> dict[str, Any]:
        """The draft's confirmation card with why it cannot go on this way on top (audited as a refusal); Edit
        lets the agent choose another way to verify the caller."""
        await self.desk.audit_refusal(caller, key, verb="mfa.confirm", req=req, params=params)
        card = cards.confirmation_card(caller.lang, req, None, warnings=[])
        return cards.with_notice(card, texts.t(caller.lang, key, **params))

    # ---------------------------------------------------------------------------------------------- answers
    async def answer(self, caller: Caller, verb: str, data: dict[str, Any]) -> dict[str, Any]:
        """ "Yes, I asked for this" / "No, I did not ask" from the card the target (or manager) got. Only that
        person, from the configured tenant, before the expiry and on the current revision."""
        tenant = self.desk.policy.check_tenant(caller.tenant_id)
        if not tenant.allowed:
            return await self.desk.refuse(caller, tenant.reason_key or "refusal.other_tenant", verb=verb)
        request_id, rev = _ids(data)
        if request_id is None or rev is None:
            return await self.desk.refuse(caller, "refusal.bad_input", verb=verb)
        req = await self.desk.store.get_request(request_id)
        if req is None:
            await self.desk.audit_refusal(
                caller, "refusal.not_found", verb=verb, req=None, request_id=request_id
            )
            return self.desk.refusal_card(caller.lang, "refusal.not_found")
        if req.verification not in ASKED_IN_TEAMS or req.verifier is None:
            return await self.desk.refuse(caller, "refusal.bad_input", verb=verb, req=req)
        if caller.person.aad_object_id.lower() != req.verifier.aad_object_id.lower():
            # someone else (the agent, an approver, a forged invoke): nothing changes, their click is audited
            return await self.desk.refuse(caller, "verify.not_verifier", verb=verb, req=req)
        lang = caller.lang
        if req.state is not RequestState.AWAITING_VERIFICATION:
            return self._ended_card(lang, req, caller.person)
        if rev != req.revision:
            return await self.desk.refuse(caller, "refusal.stale", verb=verb, req=req)
        if req.expires_at is not None and self.desk.clock() >= req.expires_at:
            expired = await self._expire_one(req)
            return self._ended_card(lang, expired or req, caller.person)
        if verb == "mfa.verify.no":
            return await self._refused_by_user(caller, req)
        verified = await self._verified(req, caller.person, actor=caller.person)
        if verified is None:
            current = await self.desk.store.get_request(req.id)
            return self._ended_card(lang, current or req, caller.person)
        self.desk.executor.spawn(self._go_on_and_show(verified))
        now = verified.verified_at or self.desk.clock()
        return cards.verify_answered_card(
            lang,
            texts.t(lang, "verify.answered.yes.title"),
            texts.t(lang, "verify.thanks.yes", time=_hhmm(now)),
        )

    def _ended_card(self, lang: str, req: ChangeRequest, person: Person) -> dict[str, Any]:
        """For the person asked once the request no longer waits for them: their own earlier answer again, or
        where it stands."""
        if (
            req.verified_by is not None
            and req.verified_by.aad_object_id.lower() == person.aad_object_id.lower()
        ):
            text = texts.t(lang, "verify.thanks.yes", time=_hhmm(req.verified_at or self.desk.clock()))
            return cards.verify_answered_card(lang, texts.t(lang, "verify.answered.yes.title"), text)
        text = texts.t(lang, "verify.ended", state=texts.t(lang, f"state.{req.state.value}"))
        return cards.verify_answered_card(lang, texts.t(lang, "verify.ended.title"), text, color="Warning")

    async def _verified(
        self, req: ChangeRequest, verified_by: Person, *, actor: Person
    ) -> ChangeRequest | None:
        from bot.persistence.store import InvalidTransition, StaleRevision

        now = self.desk.clock()
        try:
            return await self.desk.store.update_waiting(
                req.id,
                req.revision,
                RequestState.AWAITING_VERIFICATION,
                actor=actor,
                event=EVENT_VERIFIED,
                details={
                    "method": req.verification,
                    "verified_by": verified_by.name[:200],
                    "verified_by_id": verified_by.aad_object_id,
                    "verified_at": now.isoformat(),
                },
                verified_by=verified_by,
                verified_at=now,
            )
        except (StaleRevision, InvalidTransition):
            return None

    async def _go_on_and_show(self, verified: ChangeRequest) -> None:
        """After the answer in Teams, in the background: on to approval or the change; the agent's card follows."""
        try:
            card = await self.go_on(verified, None)
            if card is not None:  # None: go_on showed the progress itself before the run started
                await self._update_requester_cards(verified.id, card)
        except Exception:
            log.exception("request %s: going on after the caller was verified failed", verified.id)

    async def go_on(self, verified: ChangeRequest, caller: Caller | None) -> dict[str, Any] | None:
        """The caller is verified: to the approvers when approval is needed, else approved and run, as after a
        Confirm without verification. Returns the agent's card (confirmed by whom, then where it stands); None
        without `caller` when the run was started: the agent's card was updated before it started, so that no
        later update of it overtakes the run's own."""
        from bot.desk.approvals import ApprovalError
        from bot.persistence.store import InvalidTransition, StaleRevision

        lang = caller.lang if caller is not None else texts.lang_from_locale(verified.locale)
        at = _hhmm(verified.verified_at or self.desk.clock())
        who = verified.verified_by.name if verified.verified_by else ""
        notice = (
            texts.t(lang, "verify.code_confirmed", time=at)
            if verified.verification == "code"
            else texts.t(lang, "verify.confirmed", name=who, time=at)
        )
        if verified.approval_required:
            try:
                pending = await self.desk.approvals.submit(verified, actor=verified.requester)
            except ApprovalError as exc:
                try:
                    cancelled = await self.desk.store.transition(
                        verified.id,
                        verified.revision,
                        RequestState.CANCELLED,
                        actor=None,
                        event="cancelled",
                        details={"decision": RequestState.CANCELLED.value, "reason": exc.key},
                        decided_at=self.desk.clock(),
                        decision_reason=exc.text(texts.lang_from_locale(verified.locale)),
                    )
                except (StaleRevision, InvalidTransition):
                    current = await self.desk.store.get_request(verified.id)
                    return self.requester_view(lang, current or verified)
                return cards.decision_card(lang, cancelled)
            return cards.with_notice(cards.awaiting_card(lang, pending), notice, color="Good")
        try:
            approved = await self.desk.store.transition(
                verified.id,
                verified.revision,
                RequestState.APPROVED,
                actor=verified.requester,
                event="confirmed",
                details={
                    "old_number": verified.previous_number,
                    "new_number": verified.number,
                    "action": verified.action,
                    "verification": verified.verification,
                },
            )
        except (StaleRevision, InvalidTransition):
            current = await self.desk.store.get_request(verified.id)
            return self.requester_view(lang, current or verified)
        key = "progress.removing" if approved.action == "remove" else "progress.changing"
        card = cards.with_notice(
            cards.progress_card(lang, approved, texts.t(lang, key)), notice, color="Good"
        )
        work = self.desk.executor.execute(approved, actor=approved.requester)
        if caller is not None and caller.defer is not None:
            caller.defer(work)
        elif caller is not None:
            self.desk.executor.spawn(work)
        else:
            # the agent's card shows the progress first; the run then updates it
            await self._update_requester_cards(approved.id, card)
            self.desk.executor.spawn(work)
            return None
        return card

    async def _refused_by_user(self, caller: Caller, req: ChangeRequest) -> dict[str, Any]:
        """ "No, I did not ask": the request ends, the target is locked against changes through the bot for
        TARGET_LOCK_HOURS, the approvers get a security alert, the agent's card says so; all audited."""
        from bot.persistence.store import InvalidTransition, StaleRevision

        person = caller.person
        now = self.desk.clock()
        until = now + timedelta(hours=float(self.desk.settings.target_lock_hours))
        req_lang = texts.lang_from_locale(req.locale)
        reason = texts.t(req_lang, "verify.refused_reason", name=person.name, until=_utc(until))
        try:
            cancelled = await self.desk.store.transition(
                req.id,
                req.revision,
                RequestState.CANCELLED,
                actor=person,
                event=EVENT_REFUSED,
                details={
                    "decision": RequestState.CANCELLED.value,
                    "method": req.verification,
                    "reason": "the person asked said they did not ask for it",
                    "new_number": req.number,
                    "locked_until": until.isoformat(),
                },
                decided_by=person,
                decided_at=now,
                decision_reason=reason,
            )
        except (StaleRevision, InvalidTransition):
            current = await self.desk.store.get_request(req.id)
            return self._ended_card(caller.lang, current or req, person)
        await self.desk.store.lock_target(
            req.target_id,
            until,
            request_id=req.id,
            actor=person,
            target_upn=req.target_upn,
            details={"reason": "caller_refused", "method": req.verification},
        )
        log.warning("request %s: the person asked said they did not ask for it; the target is locked", req.id)
        self.desk.executor.spawn(self._after_refusal(cancelled, until))
        lang = caller.lang
        return cards.verify_answered_card(
            lang,
            texts.t(lang, "verify.answered.no.title"),
            texts.t(lang, "verify.thanks.no", until=_utc(until)),
        )

    async def _after_refusal(self, req: ChangeRequest, until: datetime) -> None:
        from bot.desk.approvals import APPROVERS_CHANNEL, approvers_channel_for

        try:
            await self._update_requester_cards(
                req.id, cards.decision_card(texts.lang_from_locale(req.locale), req)
            )
        except Exception:
            log.exception("request %s: updating the agent's card after the refusal failed", req.id)
        try:
            channel = approvers_channel_for(req)
            ref = await self.desk.store.conversation_reference(channel)
            if ref is None and channel != APPROVERS_CHANNEL:
                channel = APPROVERS_CHANNEL
                ref = await self.desk.store.conversation_reference(channel)
            activity_id = None
            if ref is not None:
                lang = texts.lang_from_locale(ref.get("locale") or req.locale)
                activity_id = await self.desk.updater.send_card(
                    ref, cards.security_alert_card(lang, req, until)
                )
            if activity_id is None:
                log.warning("request %s: the security alert could not be posted to the approvers", req.id)
            await self.desk.store.audit(
                EVENT_ALERT,
                actor=None,
                request_id=req.id,
                target_id=req.target_id,
                target_upn=req.target_upn,
                details={"channel": channel, "delivered": activity_id is not None},
            )
        except Exception:
            log.exception("request %s: the security alert failed", req.id)

    # ---------------------------------------------------------------------------------------------- the code
    async def check_code(self, caller: Caller, data: dict[str, Any]) -> dict[str, Any]:
        """The agent types the code the caller read back. Wrong: the attempts left; the fifth wrong ends the
        request; right: verified, on to approval or the change. After the request has moved on a code does
        nothing."""
        lang = caller.lang
        req, rev = await self.desk.own_request(caller, data)
        if req.state is not RequestState.AWAITING_VERIFICATION:
            card = self.requester_view(lang, req)
            if req.verified_by is not None:
                return cards.with_notice(card, texts.t(lang, "verify.already_done"), color="Good")
            return card
        if req.verification != "code":
            raise Refused("refusal.bad_input", request=req)
        if rev != req.revision:
            raise Refused("refusal.stale", request=req)
        if req.expires_at is not None and self.desk.clock() >= req.expires_at:
            expired = await self._expire_one(req, update_requester=False)
            return self.requester_view(lang, expired or req)
        record = await self.desk.store.verification(req.id)
        if record is None or not record.code_hash or not record.code_salt:
            raise Refused("refusal.bad_input", request=req)
        typed = data.get("code")
        digits = "".join(typed.split()) if isinstance(typed, str) and len(typed) <= 40 else ""
        if len(digits) != CODE_DIGITS or not (digits.isascii() and digits.isdigit()):
            card = cards.verification_waiting_card(lang, req, via=record.sent_via)
            return cards.with_notice(card, texts.t(lang, "verify.code.malformed"))
        if record.attempts >= MAX_CODE_ATTEMPTS or not hmac.compare_digest(
            hash_code(record.code_salt, digits), record.code_hash
        ):
            # no more tries once five were wrong, even if the request could not be ended then
            return await self._wrong_code(caller, req, record.sent_via)
        verified = await self._verified(req, req.verifier or caller.person, actor=caller.person)
        if verified is None:
            current = await self.desk.store.get_request(req.id)
            return self.requester_view(lang, current or req)
        answer = await self.go_on(verified, caller)
        assert answer is not None  # with a caller the card is the answer
        return answer

    async def _wrong_code(self, caller: Caller, req: ChangeRequest, via: str | None) -> dict[str, Any]:
        from bot.persistence.store import InvalidTransition, StaleRevision

        lang = caller.lang
        attempts = await self.desk.store.count_wrong_code(req.id)
        await self.desk.store.audit(
            EVENT_WRONG_CODE,
            actor=caller.person,
            request_id=req.id,
            target_id=req.target_id,
            target_upn=req.target_upn,
            details={"attempt": attempts, "of": MAX_CODE_ATTEMPTS},
        )
        if attempts < MAX_CODE_ATTEMPTS:
            card = cards.verification_waiting_card(lang, req, via=via)
            return cards.with_notice(
                card, texts.t(lang, "verify.code.wrong", left=MAX_CODE_ATTEMPTS - attempts)
            )
        try:
            failed = await self.desk.store.transition(
                req.id,
                req.revision,
                RequestState.CANCELLED,
                actor=caller.person,
                event=EVENT_FAILED,
                details={"decision": RequestState.CANCELLED.value, "method": "code", "attempts": attempts},
                decided_at=self.desk.clock(),
                decision_reason=texts.t(
                    texts.lang_from_locale(req.locale), "verify.failed_reason", count=MAX_CODE_ATTEMPTS
                ),
            )
        except (StaleRevision, InvalidTransition):
            current = await self.desk.store.get_request(req.id)
            return self.requester_view(lang, current or req)
        log.warning("request %s: the one-time code was wrong %d times; the request ends", req.id, attempts)
        await self._update_verifier_card(failed)
        return cards.decision_card(lang, failed)

    # ---------------------------------------------------------------------------------------------- endings
    async def cancel(self, caller: Caller, req: ChangeRequest, rev: int) -> dict[str, Any]:
        """The agent cancels while the caller is being verified: nothing was changed; the card of the person asked
        says so."""
        from bot.persistence.store import InvalidTransition, StaleRevision

        if rev != req.revision:
            raise Refused("refusal.stale", request=req)
        try:
            cancelled = await self.desk.store.transition(
                req.id,
                req.revision,
                RequestState.CANCELLED,
                actor=caller.person,
                event="cancelled",
                details={"decision": RequestState.CANCELLED.value, "while": "awaiting_verification"},
                decided_by=caller.person,
                decided_at=self.desk.clock(),
            )
        except (StaleRevision, InvalidTransition):
            current = await self.desk.store.get_request(req.id)
            return self.requester_view(caller.lang, current or req)
        await self._update_verifier_card(cancelled)
        return cards.decision_card(caller.lang, cancelled)

    async def expire_due(self) -> int:
        """Expire every request whose caller was not verified in time (the sweeper); both sides' cards say so."""
        due = await self.desk.store.due_for_expiry(self.desk.clock(), RequestState.AWAITING_VERIFICATION)
        count = 0
        for req in due:
            if await self._expire_one(req) is not None:
                count += 1
        return count

    async def _expire_one(self, req: ChangeRequest, *, update_requester: bool = True) -> ChangeRequest | None:
        from bot.persistence.store import InvalidTransition, StaleRevision

        name = req.verifier.name if req.verifier else req.target_display_name
        reason = texts.t(
            texts.lang_from_locale(req.locale), "verify.expired_reason", name=name, time=_utc(req.expires_at)
        )
        try:
            expired = await self.desk.store.transition(
                req.id,
                req.revision,
                RequestState.EXPIRED,
                actor=None,
                event=EVENT_EXPIRED,
                details={
                    "decision": RequestState.EXPIRED.value,
                    "method": req.verification,
                    "expires_at": req.expires_at.isoformat() if req.expires_at else None,
                },
                decided_at=self.desk.clock(),
                decision_reason=reason,
            )
        except (StaleRevision, InvalidTransition):
            return None
        try:
            if update_requester:
                lang = texts.lang_from_locale(expired.locale)
                await self._update_requester_cards(expired.id, cards.decision_card(lang, expired))
            await self._update_verifier_card(expired)
        except Exception:
            log.exception("request %s: updating the cards after the verification expired failed", req.id)
        return expired

    # ---------------------------------------------------------------------------------------------- crash recovery
    async def resume_verified(self, grace: timedelta = VERIFIED_GRACE) -> int:
        """Carry on after a crash (the sweeper): a request whose caller was verified more than `grace` ago and
        that still waits was left behind between the answer and the move on; it goes on now, to the approvers or
        the change, as go_on would have taken it. Claiming it is a conditional move audited as
        verification_resumed, so of two instances sweeping at the same moment one carries it on, once.
        Returns the number carried on by this instance."""
        from bot.persistence.store import InvalidTransition, StaleRevision

        cutoff = self.desk.clock() - grace
        count = 0
        for req in await self.desk.store.stuck_requests(
            RequestState.AWAITING_VERIFICATION, cutoff, verified=True
        ):
            try:
                claimed = await self.desk.store.update_waiting(
                    req.id,
                    req.revision,
                    RequestState.AWAITING_VERIFICATION,
                    actor=None,
                    event=EVENT_RESUMED,
                    details={
                        "method": req.verification,
                        "verified_at": req.verified_at.isoformat() if req.verified_at else None,
                        "approval_required": bool(req.approval_required),
                    },
                )
            except (StaleRevision, InvalidTransition):
                continue  # another instance (or the original answer) moved it first
            log.warning(
                "request %s: the caller was verified but the request never went on: going on now", req.id
            )
            await self._go_on_and_show(claimed)
            count += 1
        return count

    # ---------------------------------------------------------------------------------------------- unlock
    async def unlock(self, caller: Caller, ref: str) -> str:
        """`unlock <user>`: a privileged approver (the privileged group, read from Graph now) lifts the lock a
        "No, I did not ask" put on a user; audited."""
        from graph.errors import GraphError

        try:
            return await self._unlock(caller, ref)
        except GraphError as exc:
            _, key, params = self.desk.graph_problem(caller, exc, during="unlock")
            return texts.t(caller.lang, key, **params)

    async def _unlock(self, caller: Caller, ref: str) -> str:
        lang = caller.lang
        tenant = self.desk.policy.check_tenant(caller.tenant_id)
        if not tenant.allowed:
            key = tenant.reason_key or "refusal.other_tenant"
            await self.desk.audit_refusal(caller, key, verb="unlock", req=None)
            return texts.t(lang, key)
        roles = await self.desk.policy.roles(caller.person.aad_object_id, fresh=True)
        if not roles.privileged:
            await self.desk.audit_refusal(caller, "refusal.unlock_not_privileged", verb="unlock", req=None)
            return texts.t(lang, "refusal.unlock_not_privileged")
        ref = ref.strip()
        if not ref or len(ref) > 256 or any(c.isspace() for c in ref):
            return texts.t(lang, "unlock.usage")
        target = await self.desk.directory.find_user(ref)
        if target is None:
            return texts.t(lang, "error.target.not_found", ref=ref[:80])
        lifted = await self.desk.store.lift_target_lock(
            target.id,
            actor=caller.person,
            target_upn=target.user_principal_name,
            details={"reason": "lifted by a privileged approver"},
        )
        key = "unlock.done" if lifted else "unlock.none"
        return texts.t(lang, key, name=target.display_name, upn=target.user_principal_name)

    # ---------------------------------------------------------------------------------------------- views
    def requester_view(self, lang: str, req: ChangeRequest) -> dict[str, Any]:
        """The agent's card of a request as it stands."""
        if req.state is RequestState.AWAITING_VERIFICATION:
            return cards.verification_waiting_card(lang, req)
        if req.state is RequestState.AWAITING_APPROVAL:
            return cards.awaiting_card(lang, req)
        if req.state is RequestState.DRAFT:
            return cards.confirmation_card(lang, req, None, warnings=[])
        return cards.decision_card(lang, req)

    def verifier_lang(self, req: ChangeRequest) -> str:
        """The language of the card for the person asked: the request's e-mail language, else the agent's."""
        return req.language if req.language in ("de", "en") else texts.lang_from_locale(req.locale)

    async def _update_requester_cards(self, request_id: str, card: dict[str, Any]) -> None:
        for ref in await self.desk.store.card_refs(request_id):
            if ref.role == "requester" and ref.activity_id:
                await self.desk.updater.update_card(ref, card)

    async def _update_verifier_card(self, req: ChangeRequest) -> None:
        """The card of the person asked, once the request no longer waits for them."""
        record = await self.desk.store.verification(req.id)
        if record is None or record.card_ref is None or not record.card_ref.activity_id:
            return
        lang = self.verifier_lang(req)
        text = texts.t(lang, "verify.ended", state=texts.t(lang, f"state.{req.state.value}"))
        await self.desk.updater.update_card(
            record.card_ref,
            cards.verify_answered_card(lang, texts.t(lang, "verify.ended.title"), text, color="Warning"),
        )


def _ids(data: Any) -> tuple[str | None, int | None]:
    if not isinstance(data, dict):
        return None, None
    request_id = data.get("requestId")
    rev = data.get("rev")
    if not isinstance(request_id, str) or not REQUEST_ID.match(request_id):
        return None, None
    if isinstance(rev, str) and rev.isdigit() and len(rev) <= 9:
        rev = int(rev)
    if not isinstance(rev, int) or isinstance(rev, bool) or not 0 < rev < 1_000_000_000:
        return None, None
    return request_id, rev
