"""Generate a large tenant for benchmarks: N phone-registered users with distinct mobile numbers.

``python -m graph.simulator.generate --users 100000 --out tenant.json [--holder-number "+49 1609876543"]``
The user holding ``holder_number`` (for SMS sign-in, state ready) is placed near the end of the listing order,
so an owner search has to walk almost the whole registration report. The demo tenant's application, personas,
groups and roles are included, so the same credentials work.
"""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path
from typing import Any

DEMO_TENANT = Path(__file__).with_name("demo_tenant.json")
DEFAULT_HOLDER_NUMBER = "+49 1609876543"


def generate_tenant(
    users: int,
    *,
    holder_number: str = DEFAULT_HOLDER_NUMBER,
    holder_at: float = 0.99,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A tenant dict: the base tenant (demo by default) plus ``users`` generated phone-registered users."""
    if users < 1:
        raise ValueError("users must be at least 1")
    tenant = (
        json.loads(DEMO_TENANT.read_text(encoding="utf-8")) if base is None else json.loads(json.dumps(base))
    )
    domain = tenant["defaultDomain"]
    holder_index = min(users - 1, max(0, int(users * holder_at)))
    generated = []
    for i in range(users):
        uid = str(uuid.UUID(int=(0x5EED << 96) | i))
        number = holder_number if i == holder_index else f"+49 151{i:08d}"
        generated.append(
            {
                "id": uid,
                "userPrincipalName": f"user{i:06d}@{domain}",
                "displayName": f"Generated User {i:06d}",
                "mail": f"user{i:06d}@{domain}",
                "usageLocation": "DE",
                "phoneMethods": [{"phoneType": "mobile", "phoneNumber": number, "smsSignInState": "ready"}],
            }
        )
    # The personas come first, so the holder stays near the end of the listing order.
    personas = tenant["users"]
    tenant["users"] = personas + generated
    tenant["generated"] = {
        "users": users,
        "holderIndex": holder_index + len(personas),
        "holderNumber": holder_number,
    }
    return tenant


def holder_id(tenant: dict[str, Any]) -> str:
    return str(tenant["users"][tenant["generated"]["holderIndex"]]["id"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graph.simulator.generate", description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--out", required=True)
    parser.add_argument("--holder-number", default=DEFAULT_HOLDER_NUMBER)
    parser.add_argument(
        "--holder-at", type=float, default=0.99, help="position of the holder, 0..1 of the order"
    )
    args = parser.parse_args(argv)
    tenant = generate_tenant(args.users, holder_number=args.holder_number, holder_at=args.holder_at)
    Path(args.out).write_text(json.dumps(tenant, separators=(",", ":")), encoding="utf-8")
    info = tenant["generated"]
    print(
        f"wrote {args.out}: {args.users} generated users, holder {holder_id(tenant)} at #{info['holderIndex'] + 1}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
