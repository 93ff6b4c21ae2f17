"""An in-memory Ory Kratos and Hydra for tests: `OryEmulator` and its helpers.

Use it in-process through `OryEmulator.transport`, or on a real port with
`OryEmulator.serve` (needs the ``server`` extra).
"""

from ._emulator import DEFAULT_PUBLIC_URL, OryEmulator
from ._faults import ENDPOINTS, Fault
from ._hydra_state import EmulatedConsent, EmulatedHydra
from ._kratos_sessions import SESSION_COOKIE
from ._kratos_state import (
    DEFAULT_SESSION_LIFESPAN,
    EmulatedKratos,
    EmulatedSession,
    SchemaValidator,
)
from ._versions import DEFAULT_KRATOS_VERSION

__all__ = [
    "DEFAULT_KRATOS_VERSION",
    "DEFAULT_PUBLIC_URL",
    "DEFAULT_SESSION_LIFESPAN",
    "ENDPOINTS",
    "SESSION_COOKIE",
    "EmulatedConsent",
    "EmulatedHydra",
    "EmulatedKratos",
    "EmulatedSession",
    "Fault",
    "OryEmulator",
    "SchemaValidator",
]
