"""cli: the ``bulkup`` command. One module per command family, the logging and progress seen
by the user, and the process runtime (event loop choice, a lean aiohttp import, allocator and
interpreter settings).

Owns: ``main`` (the parser and dispatch, nothing else), one module per command: ``upload``,
``jobs`` (``bulkup job``), ``journals`` (``status``, ``report --failed``, ``journal``),
``reports`` (``report merge``), ``plan``; ``args`` (argument groups the commands share);
``log``, ``progress``, ``progress_display`` (what the user sees); ``runtime`` and
``malloc_tuning`` (the process: loop, lean imports, allocator). A command module imports what
its command needs inside the command, so that building the parser stays cheap and structlog is
imported only after :func:`bulkup.cli.runtime.import_structlog`.

May import: every other wing, ``bulkup.emulator`` only through ``bulkup.emulator.embedded`` and
the ``serve`` entry point.
"""
