"""`python -m graph` as a subprocess against the simulator running in a background thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
JSON_KEYS = {
    "outcome",
    "sms_sign_in_conflict",
    "holder",
    "notification",
    "user",
    "previous_number",
    "number",
    "graph_request_ids",
}


def run_cli(env: dict[str, str], *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPH_", "MAIL_", "SERVICE_DESK_"))}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "graph", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_json(env: dict[str, str], *args: str) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    proc = run_cli(env, *args, "--json")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, (proc.stdout, proc.stderr)
    data = json.loads(lines[0])
    assert JSON_KEYS <= data.keys()
    assert "Traceback" not in proc.stderr
    return data, proc


def new_user(sim: Any, *, mobile: str | None = None, sms: str | None = None, **extra: Any) -> Any:
    uid = str(uuid.uuid4())
    upn = f"cli.{uid[:8]}@contoso.example"
    phones = []
    if mobile:
        phones.append(
            {"phoneType": "mobile", "phoneNumber": mobile, **({"smsSignInState": sms} if sms else {})}
        )
    if "alternate" in extra:
        phones.append({"phoneType": "alternateMobile", "phoneNumber": extra.pop("alternate")})
    data = {
        "id": uid,
        "userPrincipalName": upn,
        "displayName": f"CLI {uid[:4]}",
        "mail": upn,
        "phoneMethods": phones,
    }
    data.update(extra)
    return sim.tenant.add_user(data)


@pytest.fixture
def env(sim_thread_env: dict[str, str]) -> dict[str, str]:
    return dict(sim_thread_env)


def test_set_adds_and_prints_one_json_object(sim_thread: Any, env: dict[str, str]) -> None:
    user = new_user(sim_thread)
    data, proc = run_json(env, "set", "--user", user.upn, "--number", "+49 176 1234567")
    assert data["outcome"] == "added" and proc.returncode == 0
    assert data["number"] == "+491761234567" and data["previous_number"] is None
    assert data["user"]["userPrincipalName"] == user.upn
    assert data["graph_request_ids"]
    assert data["notification"] == "disabled"


def test_set_updates(sim_thread: Any, env: dict[str, str]) -> None:
    user = new_user(sim_thread, mobile="+49 1769999999")
    data, proc = run_json(env, "set", "--user", user.id, "--number", "+49 176 1234567")
    assert (data["outcome"], proc.returncode) == ("updated", 0)
    assert data["previous_number"] == "+491769999999"


def test_set_unchanged(sim_thread: Any, env: dict[str, str]) -> None:
    user = new_user(sim_thread, mobile="+49 1761234567")
    data, proc = run_json(env, "set", "--user", user.upn, "--number", "0049 176 1234567")
    assert (data["outcome"], proc.returncode) == ("unchanged", 0)


def test_remove_removes(sim_thread: Any, env: dict[str, str]) -> None:
    user = new_user(sim_thread, mobile="+49 1761234567")
    data, proc = run_json(env, "remove", "--user", user.upn, "--number", "+49 176 1234567")
    assert (data["outcome"], proc.returncode) == ("removed", 0)


def test_remove_nothing_to_remove(sim_thread: Any, env: dict[str, str]) -> None:
    user = new_user(sim_thread)
    data, proc = run_json(env, "remove", "--user", user.upn, "--number", "+49 176 1234567")
    assert (data["outcome"], proc.returncode) == ("nothing_to_remove", 0)


def test_remove_number_mismatch_exits_2(sim_thread: Any, env: dict[str, str]) -> None:
    user = new_user(sim_thread, mobile="+49 1769998877")
    data, proc = run_json(env, "remove", "--user", user.upn, "--number", "+49 176 1234567")
    assert (data["outcome"], proc.returncode) == ("number_mismatch", 2)
    assert "+49 176 ***8877" in data["message"] and "1769998877" not in data["message"]


def test_remove_blocked_by_graph_rule(sim_thread: Any, env: dict[str, str]) -> None:
    user = new_user(sim_thread, mobile="+49 1761234567", alternate="+49 1517654321")
    data, proc = run_json(env, "remove", "--user", user.upn, "--number", "+49 176 1234567")
    assert (data["outcome"], proc.returncode) == ("blocked_by_graph_rule", 1)
    assert "alternate mobile" in data["next_step"].lower()
    assert data["next_step_code"] == "remove_alternate_first"


def test_sms_sign_in_conflict_is_success(sim_thread: Any, env: dict[str, str]) -> None:
    new_user(sim_thread, mobile="+49 1765550001", sms="ready")
    user = new_user(sim_thread)
    sim_thread.behaviour.update({"conflict_stores_method": True, "visibility_delay_ms": 0})
    data, proc = run_json(env, "set", "--user", user.upn, "--number", "+49 176 5550001")
    assert (data["outcome"], proc.returncode) == ("added", 0)
    assert data["sms_sign_in_conflict"] is True
    # the English sentence the CLI documents, and its code beside it
    assert data["warnings"] == [
        "SMS sign-in is not available with this number: another user holds it for SMS sign-in."
    ]
    assert data["warning_codes"] == [{"code": "sms_sign_in_unavailable", "params": {}}]


def test_conflict_unresolved_names_the_holder(sim_thread: Any, env: dict[str, str]) -> None:
    env = dict(env, CONFLICT_READBACK_SECONDS="0.5")  # the simulator shows a stored number at once
    holder = new_user(sim_thread, mobile="+49 1765550002", sms="ready")
    user = new_user(sim_thread)
    sim_thread.behaviour.update({"conflict_stores_method": False})
    try:
        data, proc = run_json(env, "set", "--user", user.upn, "--number", "+49 176 5550002")
    finally:
        sim_thread.behaviour.update({"conflict_stores_method": True})
    assert (data["outcome"], proc.returncode) == ("conflict_unresolved", 1)
    assert data["holder"]["userPrincipalName"] == holder.upn
    assert data["holder"]["portalUrl"].endswith(holder.id)
    assert "owner search" in proc.stderr


def test_text_output_names_a_disabled_holder_and_a_tenant_where_the_holder_cannot_be_searched(
    sim_thread: Any, env: dict[str, str]
) -> None:
    env = dict(env, CONFLICT_READBACK_SECONDS="0.5")
    user = new_user(sim_thread)
    sim_thread.behaviour.update({"conflict_stores_method": False})
    try:
        disabled = run_cli(env, "set", "--user", user.upn, "--number", "+49 170 8880006")  # Dirk Disabled's
        sim_thread.behaviour.update({"p1_licensed": False})
        unlicensed = run_cli(env, "set", "--user", user.upn, "--number", "+49 170 8880003")  # Hanna Hidden's
    finally:
        sim_thread.behaviour.update({"conflict_stores_method": True, "p1_licensed": True})
    assert disabled.returncode == 1, disabled.stderr
    assert "Holder: Dirk Disabled <dirk.disabled@contoso.example> (disabled account)" in disabled.stdout
    assert "disabled accounts checked: holder found" in disabled.stderr
    assert unlicensed.returncode == 1, unlicensed.stderr
    assert "Holder search: not_licensed (the holder cannot be searched in this tenant" in unlicensed.stdout
    assert "deleted" not in unlicensed.stdout


def test_user_not_found_exits_2(sim_thread: Any, env: dict[str, str]) -> None:
    data, proc = run_json(env, "set", "--user", "ghost@contoso.example", "--number", "+49 176 1234567")
    assert (data["outcome"], proc.returncode) == ("user_not_found", 2)


def test_permission_denied_for_an_app_without_the_role(sim_thread: Any, env: dict[str, str]) -> None:
    user = new_user(sim_thread)
    app_id = str(uuid.uuid4())
    from graph.simulator.tenant import Application

    sim_thread.tenant.applications.append(
        Application(
            client_id=app_id,
            client_secret="reader-secret",
            roles=["User.Read.All", "UserAuthenticationMethod.Read.All"],
        )
    )
    reader = dict(env, GRAPH_CLIENT_ID=app_id, GRAPH_CLIENT_SECRET="reader-secret")
    reader.pop("GRAPH_CLIENT_CERTIFICATE", None)
    data, proc = run_json(reader, "set", "--user", user.upn, "--number", "+49 176 1234567")
    assert (data["outcome"], proc.returncode) == ("permission_denied", 1)
    assert (
        data["missing_permission"]
        == "UserAuthMethod-Phone.ReadWrite.All (or UserAuthenticationMethod.ReadWrite.All)"
    )


def test_graph_unavailable_after_injected_503s(sim_thread: Any, env: dict[str, str]) -> None:
    user = new_user(sim_thread)
    sim_thread.faults.inject("GET", r"/authentication/phoneMethods$", 503, times=100)
    try:
        data, proc = run_json(env, "set", "--user", user.upn, "--number", "+49 176 1234567")
    finally:
        sim_thread.faults.clear()
    assert (data["outcome"], proc.returncode) == ("graph_unavailable", 1)
    assert data["graph_request_ids"]


BAD_NUMBERS = {
    "empty": "",
    "letters": "call me maybe",
    "too_short": "+49 17",
    "too_long": "+49 176 1234567890123456",
    "punctuation": "+49 176!123?4567",
    "unicode_digits": "+٤٩ ١٧٠ ١٢٣٤٥٦٧",
    "ten_kilobytes": "+49" + "1" * 10_240,
}


@pytest.mark.parametrize("number", BAD_NUMBERS.values(), ids=BAD_NUMBERS.keys())
def test_bad_numbers_are_invalid_number_and_touch_nothing(
    sim_thread: Any, env: dict[str, str], number: str
) -> None:
    user = new_user(sim_thread)
    before = len(sim_thread.calls)
    data, proc = run_json(env, "set", "--user", user.upn, "--number", number)
    assert (data["outcome"], proc.returncode) == ("invalid_number", 2)
    assert data["message"]
    assert len(sim_thread.calls) == before


def test_text_output_is_readable(sim_thread: Any, env: dict[str, str]) -> None:
    user = new_user(sim_thread, mobile="+49 1761234567")
    proc = run_cli(env, "show", "--user", user.upn)
    assert proc.returncode == 0, proc.stderr
    assert "Outcome: shown" in proc.stdout
    assert "mobile +49 1761234567" in proc.stdout


def test_missing_setting_is_one_line_and_exit_1(sim_thread: Any, env: dict[str, str]) -> None:
    broken = {k: v for k, v in env.items() if k != "GRAPH_TENANT_ID"}
    proc = run_cli(broken, "show", "--user", "x@contoso.example")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "GRAPH_TENANT_ID" in proc.stderr


def test_usage_error_exits_2(sim_thread: Any, env: dict[str, str]) -> None:
    proc = run_cli(env, "frobnicate", "--user", "x")
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


def test_notify_sends_the_mail_with_caller_and_ticket(sim_thread: Any, env: dict[str, str]) -> None:
    user = new_user(sim_thread, usageLocation="CH")
    with_sender = dict(env, MAIL_SENDER="servicedesk@contoso.example")
    before = len(sim_thread.outbox)
    data, proc = run_json(
        with_sender,
        "set",
        "--user",
        user.upn,
        "--number",
        "+41 79 123 45 67",
        "--notify",
        "--caller",
        "Agent Kim",
        "--ticket-url",
        "https://tickets.contoso.example/T-42",
    )
    assert (data["outcome"], data["notification"], proc.returncode) == ("added", "sent", 0)
    assert data["notification_language"] == "de"
    mails = sim_thread.outbox[before:]
    assert len(mails) == 1
    assert "T-42" in str(mails[0]) and "Agent Kim" in str(mails[0])


def test_notify_without_sender_is_refused_before_any_change(sim_thread: Any, env: dict[str, str]) -> None:
    user = new_user(sim_thread)
    before = len(sim_thread.calls)
    data, proc = run_json(env, "set", "--user", user.upn, "--number", "+49 176 1234567", "--notify")
    assert (data["outcome"], proc.returncode) == ("invalid_request", 2)
    assert len(sim_thread.calls) == before
