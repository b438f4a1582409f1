"""Command line: ``python -m graph set|remove|show --user ID_UPN_OR_MAIL [--number N] ...``.

Readable text by default; ``--json`` prints exactly one JSON object (``Outcome.to_json()``) on stdout. Progress of a
long owner search goes to stderr. Exit codes: 0 success (added, updated, removed, unchanged, nothing_to_remove,
shown); 2 the request needs correcting (invalid_number, number_mismatch, user_not_found, invalid_request) and
command-line usage errors; 1 everything else, including a settings error.

``python -m graph doctor [--user UPN] [--json]`` checks a tenant without changing anything (graph/doctor.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from graph.outcome import Outcome, OutcomeKind
from graph.owner_search import SearchProgress

USAGE_EXIT = 2
SETTINGS_EXIT = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m graph",
        description="Set, update, remove or show a user's mobile phone MFA method in Microsoft Entra ID.",
        epilog="Exit codes: 0 done or nothing to do; 2 the request needs correcting (invalid number, number "
        "mismatch, user not found, usage error); 1 anything else (Graph refused or unavailable, settings). "
        "Check a tenant before the first change: python -m graph doctor [--user UPN] [--json].",
    )
    parser.add_argument("action", choices=["set", "remove", "show"], help="what to do")
    parser.add_argument("--user", required=True, help="object id, user principal name or mail address")
    parser.add_argument("--number", help="the mobile number, e.g. '+49 170 1234567' (set and remove)")
    parser.add_argument("--notify", action="store_true", help="e-mail the user about the change")
    parser.add_argument(
        "--language", choices=["auto", "de", "en"], default="auto", help="language of the e-mail"
    )
    parser.add_argument("--ticket-url", help="link to the ticket behind the change (shown in the e-mail)")
    parser.add_argument("--caller", help="who asked for the change (shown in the e-mail)")
    parser.add_argument(
        "--no-owner-search", action="store_true", help="on a conflict, do not search the holder"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


class _Progress:
    """Owner-search progress on stderr, at most every ``interval`` seconds."""

    def __init__(self, stream: TextIO, interval: float = 2.0) -> None:
        self._stream = stream
        self._interval = interval
        self._last = 0.0

    def __call__(self, p: SearchProgress) -> None:
        now = time.monotonic()
        if not p.found and now - self._last < self._interval:
            return
        self._last = now
        if p.stage == "profile":
            text = "profile fields checked" + (
                ": holder found" if p.found else "; checking disabled accounts"
            )
        elif p.stage == "disabled":
            text = "disabled accounts checked" + (": holder found" if p.found else "; scanning the tenant")
        else:
            text = f"{p.scanned} phone-registered users checked" + (": holder found" if p.found else "")
        print(f"owner search: {text}", file=self._stream, flush=True)


def render_text(outcome: Outcome) -> str:
    """The operator's view: numbers in full (this is the answer, not a log)."""
    lines = [f"Outcome: {outcome.kind.value} (exit {outcome.exit_code})"]
    if outcome.user is not None:
        u = outcome.user
        guest = " [guest]" if u.is_guest else ""
        lines.append(f"User: {u.display_name} <{u.user_principal_name}>{guest} id {u.id}")
    if outcome.action != "show" and outcome.kind is not OutcomeKind.INVALID_NUMBER:
        lines.append(f"Previous mobile number: {outcome.previous_number or 'none'}")
    if outcome.number:
        lines.append(f"Number: {outcome.number}")
    if outcome.phones is not None:
        if not outcome.phones.methods:
            lines.append("Phone methods: none")
        for m in outcome.phones.methods:
            state = f" (smsSignInState {m.sms_sign_in_state})" if m.sms_sign_in_state else ""
            lines.append(f"Phone method: {m.phone_type} {m.phone_number}{state}")
    if outcome.sms_sign_in_state and outcome.action != "show":
        lines.append(f"SMS sign-in state: {outcome.sms_sign_in_state}")
    if outcome.sms_sign_in_conflict:
        lines.append("SMS sign-in conflict: yes (the number works for MFA, not for SMS sign-in)")
    if outcome.holder is not None:
        h = outcome.holder
        account = "enabled" if h.account_enabled else "disabled"
        lines.append(
            f"Holder: {h.display_name} <{h.user_principal_name}> ({account} account) {h.phone_type} phone, "
            f"smsSignInState {h.sms_sign_in_state}, {h.portal_url}"
        )
    elif outcome.holder_search == "not_licensed":
        lines.append(
            "Holder search: not_licensed (the holder cannot be searched in this tenant: the registration report "
            "needs Microsoft Entra ID P1 or P2)"
        )
    elif outcome.holder_search == "not_permitted":
        lines.append(f"Holder search: not_permitted (missing permission {outcome.missing_permission})")
    elif outcome.holder_search != "not_run":
        lines.append(f"Holder search: {outcome.holder_search}")
    n = outcome.notification
    if n.status.value != "disabled":
        to = f" to {n.recipient}" if n.recipient else ""
        lang = f" ({n.language})" if n.language else ""
        why = f": {n.detail}" if n.detail else ""
        lines.append(f"Notification: {n.status.value}{to}{lang}{why}")
    if outcome.missing_permission:
        lines.append(f"Missing permission: {outcome.missing_permission}")
    lines.append(outcome.message)
    if outcome.next_step:
        lines.append(f"Next step: {outcome.next_step}")
    for w in outcome.warnings:
        lines.append(f"Warning: {w.text}")
    if outcome.graph_request_ids:
        lines.append("Graph request-ids: " + ", ".join(outcome.graph_request_ids))
    return "\n".join(lines)


async def run_command(args: argparse.Namespace, settings: Any, *, stderr: TextIO) -> Outcome:
    """Build the Graph stack from settings, run one command, close everything."""
    from graph.client import graph_client
    from graph.directory import Directory
    from graph.notify import Notifier
    from graph.workflow import PhoneMfaWorkflow, WorkflowRequest, WorkflowSettings

    async with graph_client(settings) as client:
        wf_settings = WorkflowSettings.from_graph_settings(settings)
        notifier = Notifier.from_settings(settings) if settings.mail_sender else None
        workflow = PhoneMfaWorkflow(client, Directory(client), wf_settings, notifier=notifier)
        if args.action == "show":
            return await workflow.show(args.user)
        req = WorkflowRequest(
            action=args.action,
            user_ref=args.user,
            number=args.number,
            notify=args.notify,
            language=args.language,
            ticket_url=args.ticket_url,
            caller=args.caller,
            owner_search=not args.no_owner_search,
        )
        return await workflow.run(req, progress=_Progress(stderr))


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    from graph.log_privacy import install as mask_numbers_in_logs

    mask_numbers_in_logs()  # a warning logged on the way (httpx, msal) carries no full number
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    if argv and argv[0] == "doctor":  # the read-only tenant preflight (graph/doctor.py)
        from graph import doctor

        return doctor.main(list(argv[1:]), environ if environ is not None else {}, stdout=out, stderr=err)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage line
        return int(exc.code) if isinstance(exc.code, int) else USAGE_EXIT

    from graph.settings import GraphSettings, SettingsError

    try:
        settings = GraphSettings.from_env(environ if environ is not None else {})
    except SettingsError as exc:
        print(f"error: {exc}", file=err)
        return SETTINGS_EXIT

    try:
        outcome = asyncio.run(run_command(args, settings, stderr=err))
    except KeyboardInterrupt:
        print("error: interrupted; run `show` to see the current state", file=err)
        return 1
    except Exception as exc:  # noqa: BLE001 - one line, never a stack trace
        outcome = _setup_failure(args.action, exc)

    if args.json:
        print(json.dumps(outcome.to_json(), ensure_ascii=False), file=out)
    else:
        print(render_text(outcome), file=out)
    return outcome.exit_code


def _setup_failure(action: str, exc: BaseException) -> Outcome:
    """A failure outside the workflow (credentials, TLS, DNS): an outcome, not a stack trace."""
    from graph.errors import GraphError, TokenError

    if isinstance(exc, TokenError) and exc.transient:
        return Outcome(
            kind=OutcomeKind.GRAPH_UNAVAILABLE,
            action=action,  # type: ignore[arg-type]
            message=f"Microsoft sign-in did not answer ({exc.code}: {exc.message}); nothing was changed.",
            next_step="Try again in a few seconds; if it keeps failing, in a few minutes.",
            graph_error_code=exc.code,
        )
    if isinstance(exc, TokenError):
        return Outcome(
            kind=OutcomeKind.PERMISSION_DENIED,
            action=action,  # type: ignore[arg-type]
            message=f"Microsoft Entra refused the application's credentials: {exc.problem} "
            f"({exc.aadsts or exc.code}: {exc.message}).",
            next_step="Check GRAPH_TENANT_ID, GRAPH_CLIENT_ID and the client secret or certificate.",
            graph_error_code=exc.code,
        )
    text = exc.message if isinstance(exc, GraphError) else (str(exc).splitlines() or [type(exc).__name__])[0]
    return Outcome(
        kind=OutcomeKind.GRAPH_UNAVAILABLE,
        action=action,  # type: ignore[arg-type]
        message=f"Could not reach Microsoft Entra or Graph: {text}",
        next_step="Check GRAPH_AUTHORITY_HOST, GRAPH_BASE_URL, the network and the trusted CA (SSL_CERT_FILE).",
    )
