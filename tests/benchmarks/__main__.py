"""`python -m tests.benchmarks` (= `make bench`): owner search, 409 answer time and Graph calls, ours vs the runbook.

The simulator runs in its own process (`python -m graph.simulator`), so only our memory is measured here.
The last line printed is exactly
`owner_search_speedup=X conflict_answer_s=Y peak_rss_mb=Z conflict_answer_s_visible_0s=C0
conflict_answer_s_visible_2s=C2 conflict_answer_s_visible_5s=C5 conflict_answer_s_visible_8s=C8
review_round_trips=A confirm_round_trips=B` (Cn: the 409 answer when Graph shows the stored number n s late).
See docs/BENCHMARKS.md for what dominates and how the runbook's time is obtained.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from tests.benchmarks.run import main


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.benchmarks")
    p.add_argument(
        "--users", type=int, default=100_000, help="phone-registered users in the generated tenant"
    )
    p.add_argument("--holder-at", type=float, default=0.95, help="holder position in report order (0..1)")
    p.add_argument("--latency-ms", type=int, default=60)
    p.add_argument("--batch-latency-ms", type=int, default=150)
    p.add_argument(
        "--full-runbook",
        action="store_true",
        help="run the runbook's owner search to the end instead of measuring a sample and extrapolating (slow)",
    )
    p.add_argument("--runbook-sample-pages", type=int, default=15)
    p.add_argument("--runbook-sample-batches", type=int, default=60)
    p.add_argument(
        "--round-trip-latency-ms",
        type=int,
        default=400,
        help="Graph latency per request while the round trips of Review and Confirm are counted",
    )
    p.add_argument(
        "--round-trips-only", action="store_true", help="count the round trips of Review and Confirm only"
    )
    p.add_argument(
        "--conflict-only",
        action="store_true",
        help="measure the 409 answer for writes visible after 0, 2, 5 and 8 s only (small tenant)",
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(_args(sys.argv[1:]))))
