"""Abuse limits: how many changes one requester may make per hour, and how soon the same user's MFA phone may be
changed again (against flip-flopping a number back and forth).

Both come from BotSettings (MAX_CHANGES_PER_REQUESTER_PER_HOUR, TARGET_COOLDOWN_MINUTES; 0 switches one off) and
are read from the store, so they hold across restarts and instances:
- the requester's count is the number of their requests that reached `executing` in the last hour
  (store.count_changes_by_requester);
- the cool-down starts at the target's last completed change that changed something
  (store.last_change_for_target: added, updated or removed; "unchanged" and Graph refusals do not count).

`check_limits` only decides; the caller audits the refusal (the desk audits every refusal it answers: bot/desk/context.py) or
uses `check_and_audit`, which writes the "refused" audit row itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.desk.policy import Decision, refuse
from bot.persistence.models import Person

RATE_LIMIT_KEY = "refusal.rate_limit"
COOLDOWN_KEY = "refusal.target_cooldown"
_WINDOW = {"en": "1 h", "de": "1 Std."}


async def check_limits(
    store: Any, settings: Any, requester: Person, target_id: str, now: datetime, *, lang: str = "en"
) -> Decision | None:
    """None when the change may go ahead; else a refusal Decision (reason_key and the text's parameters)."""
    limit = int(getattr(settings, "max_changes_per_requester_per_hour", 0) or 0)
    if limit > 0:
        count = await store.count_changes_by_requester(requester.aad_object_id, now - timedelta(hours=1))
        if count >= limit:
            return refuse(RATE_LIMIT_KEY, limit=limit, window=_WINDOW.get(lang, _WINDOW["en"]), count=count)
    minutes = float(getattr(settings, "target_cooldown_minutes", 0) or 0)
    if minutes > 0 and target_id:
        last = await store.last_change_for_target(target_id)
        if last is not None:
            until = last + timedelta(minutes=minutes)
            if now < until:
                return refuse(
                    COOLDOWN_KEY,
                    time=last.strftime("%H:%M UTC"),
                    until=until.strftime("%H:%M UTC"),
                    minutes=int(minutes) if minutes == int(minutes) else minutes,
                )
    return None


async def check_and_audit(
    store: Any,
    settings: Any,
    requester: Person,
    target_id: str,
    now: datetime,
    *,
    lang: str = "en",
    request_id: str | None = None,
    target_upn: str | None = None,
    verb: str | None = None,
) -> Decision | None:
    """check_limits, and a "refused" audit row (reason and limit figures) when it refuses."""
    decision = await check_limits(store, settings, requester, target_id, now, lang=lang)
    if decision is not None:
        details: dict[str, Any] = {"reason": decision.reason_key}
        if verb:
            details["verb"] = verb[:40]
        details.update({k: str(v)[:200] for k, v in decision.params.items()})
        await store.audit(
            "refused",
            actor=requester,
            request_id=request_id,
            target_id=target_id,
            target_upn=target_upn,
            details=details,
        )
    return decision
