"""Microsoft Graph + Entra login simulator for tests, benchmarks and demo mode (see docs/ARCHITECTURE.md)."""

from .behaviour import Behaviour, Call, Fault, Faults
from .phones import ALTERNATE_MOBILE_ID, MOBILE_ID, OFFICE_ID
from .server import Simulator
from .tenant import DEFAULT_TEAMS_APP_EXTERNAL_ID, Tenant
from .thread import SimulatorThread

__all__ = [
    "ALTERNATE_MOBILE_ID",
    "DEFAULT_TEAMS_APP_EXTERNAL_ID",
    "MOBILE_ID",
    "OFFICE_ID",
    "Behaviour",
    "Call",
    "Fault",
    "Faults",
    "Simulator",
    "SimulatorThread",
    "Tenant",
]
