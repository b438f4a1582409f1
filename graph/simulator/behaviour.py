"""Switches, fault injection and the call record of the simulator."""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

FaultAction = int | Literal["drop", "timeout"]


@dataclass
class Behaviour:
    """What the simulator does where Microsoft documents nothing or where tests need a knob.

    normalise_numbers        "+CCNNN" is stored and returned as "+CC NNN" (observed in production).
    sms_uniqueness           POST/PATCH of a mobile number that another user holds for SMS sign-in (state ready),
                             on a target enabled for SMS sign-in by policy, answers 409 phoneNumberNotUnique.
    conflict_stores_method   ... and the method is stored anyway with smsSignInState "phoneNumberNotUnique".
    visibility_delay_ms      writes to phone methods become visible to reads after this many ms.
    throttle                 token bucket over Graph requests per identity limits (per app + tenant).
    throttle_capacity        resource units per ``throttle_window_s`` (None: by tenant size, 3500/5000/8000).
    fractional_retry_after   Retry-After like "2.128" instead of an integer.
    report_throttle          userRegistrationDetails: ``report_limit`` requests per ``report_window_s``.
    latency_ms               added to every Graph request; ``batch_latency_ms`` replaces it for $batch.
    token_lifetime_s         expires_in of issued access tokens.
    hang_s                   how long a "timeout" fault holds the request before closing it.
    pim_licensed             the tenant has Entra ID P2 (PIM); off: roleEligibilityScheduleInstances answers
                             400 AadPremiumLicenseRequired.
    p1_licensed              the tenant has Entra ID P1 or P2 (usage and insights reports); off:
                             userRegistrationDetails answers 403 Authentication_RequestFromNonPremiumTenantOrB2CTenant.
                             A tenant without P1 has no P2 either: turn ``pim_licensed`` off with it to model one.
    owned_objects_app_only   GET /users/{id}/ownedObjects answers an app-only token (with a user or group read
                             permission), as an older revision of Microsoft's page said. Off (the default): 403
                             Authorization_RequestDenied, as the current page says "Application: Not supported"
                             (the status itself is not documented).
    write_conflict_code      a phone-method POST/PATCH answers 409 with this code and changes nothing: a conflict
                             that is not SMS sign-in uniqueness (None, the default: only phoneNumberNotUnique).
    lone_default_deletable   deleting the default method (``defaultMethod``) is refused only while the user has
                             other authentication methods (400 badRequest "Cannot delete default method with other
                             methods configured."); the user's only method can be deleted. Observed in production;
                             Microsoft's page says only that the default method "can't be deleted". Off: it is
                             never deleted, with the same answer.
    teams_app_in_catalog     the tenant app catalog lists the bot's Teams app (its ``teamsApps``). Off: no app
                             matches any filter, as for an app not (yet) published to the organization's store or
                             not visible yet ("it typically takes 24-48 hours for the policies to be applied",
                             https://learn.microsoft.com/graph/api/appcatalogs-list-teamsapps).
    teams_app_blocked        an app permission policy blocks the app for the users: installing it for a user
                             answers 403 Forbidden "App is blocked by app permission policy." (innerError
                             AccessDenied). Microsoft's page documents no answer for that; this is the answer
                             production clients log (OfficeDev/microsoft-teams-apps-company-communicator issues
                             #889, #1537).
    """

    normalise_numbers: bool = True
    sms_uniqueness: bool = True
    conflict_stores_method: bool = True
    visibility_delay_ms: int = 0
    throttle: bool = False
    throttle_capacity: int | None = None
    throttle_window_s: float = 10.0
    write_capacity: int = 3000
    write_window_s: float = 150.0
    fractional_retry_after: bool = False
    report_throttle: bool = True
    report_limit: int = 5
    report_window_s: float = 10.0
    latency_ms: int = 0
    batch_latency_ms: int = 0
    token_lifetime_s: int = 3599
    hang_s: float = 120.0
    pim_licensed: bool = True
    p1_licensed: bool = True
    owned_objects_app_only: bool = False
    write_conflict_code: str | None = None
    lone_default_deletable: bool = True
    teams_app_in_catalog: bool = True
    teams_app_blocked: bool = False

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown behaviour switch(es): {', '.join(sorted(unknown))}")
        for key, value in changes.items():
            setattr(self, key, value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Fault:
    method: str
    path_regex: str
    action: FaultAction
    times: int = 1
    retry_after: float | None = None
    after_apply: bool = False
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method == "*" or self.method.upper() == method.upper()) and re.search(
            self.path_regex, path
        ) is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    """Injected failures: ``inject("PATCH", r"/phoneMethods/", 503, times=2, retry_after=1)``.

    action: an HTTP status code (Graph error body, optional Retry-After), "drop" (close the connection without an
    answer) or "timeout" (hold the request for ``Behaviour.hang_s``, longer than any client timeout). With
    ``after_apply=True`` (or action "apply_then_drop" / "apply_then_timeout") the request is carried out first,
    so the client cannot know whether its write happened. A "drop" or "timeout" for a request that is sent inside
    a $batch hits the $batch's own connection, which carries it (`take_connection`).
    """

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def inject(
        self,
        method: str,
        path_regex: str,
        action: FaultAction | str,
        times: int = 1,
        retry_after: float | None = None,
        *,
        after_apply: bool = False,
    ) -> Fault:
        if isinstance(action, str) and action.startswith("apply_then_"):
            action, after_apply = action.removeprefix("apply_then_"), True
        if isinstance(action, str) and action.isdigit():
            action = int(action)
        if not (isinstance(action, int) or action in ("drop", "timeout")):
            raise ValueError(f"unknown fault action {action!r}")
        re.compile(path_regex)
        fault = Fault(method.upper(), path_regex, action, times, retry_after, after_apply)  # type: ignore[arg-type]
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str, *, in_batch: bool = False) -> Fault | None:
        """The first live fault matching the request; counts one use of it."""
        with self._lock:
            for fault in self._faults:
                if fault.hits < fault.times and fault.matches(method, path):
                    if in_batch and not isinstance(fault.action, int):
                        continue
                    fault.hits += 1
                    return fault
        return None

    def take_connection(self, method: str, path: str) -> Fault | None:
        """The first live "drop" or "timeout" matching the request; counts one use of it."""
        with self._lock:
            for fault in self._faults:
                if (
                    fault.hits < fault.times
                    and not isinstance(fault.action, int)
                    and fault.matches(method, path)
                ):
                    fault.hits += 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if f.hits < f.times]

    def to_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]


@dataclass
class Call:
    """One Graph request as the simulator saw it (login requests are not recorded)."""

    method: str
    path: str
    query: dict[str, str]
    status: int | None  # None: the connection was dropped or held without an answer
    json: Any
    request_id: str
    ts: float
    in_batch: bool = False
    client_request_id: str | None = None
    fault: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # time.time() when the request arrived and when its answer was handed back (latency included), so a test can
    # tell which calls overlapped and which waited for another (None inside $batch, and until it is answered)
    started: float | None = None
    ended: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
