"""A faithful local emulator of the IPS UploadFile servlet (``bulkup serve``).

It shares no code with the client: it parses, validates and answers on its own, so that a bug
in one side is caught by the other. Public surface: :func:`make_app`, :class:`EmulatorSettings`
and :func:`build_settings`.
"""

from bulkup.emulator.app import make_app
from bulkup.emulator.settings import Company, EmulatorSettings, User, build_settings

__all__ = ["Company", "EmulatorSettings", "User", "build_settings", "make_app"]
