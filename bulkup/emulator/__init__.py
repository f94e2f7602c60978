"""A faithful local emulator of the IPS UploadFile servlet (``bulkup serve``).

It shares no code with the client: it parses, validates and answers on its own, so that a bug
in one side is caught by the other. Public surface: :func:`make_app`, :class:`EmulatorSettings`
and :func:`build_settings` (loaded on first use, so ``bulkup --help`` stays quick).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Company", "EmulatorSettings", "User", "build_settings", "make_app"]


def __getattr__(name: str) -> Any:
    if name == "make_app":
        from bulkup.emulator.app import make_app

        return make_app
    if name in __all__:
        from bulkup.emulator import settings

        return getattr(settings, name)
    raise AttributeError(f"module 'bulkup.emulator' has no attribute {name!r}")
