"""cli: the ``bulkup`` command. One module per command family, the logging and progress seen
by the user, and the process runtime (event loop choice, a lean aiohttp import, allocator and
interpreter settings).

Owns: ``main`` (the parser and dispatch), ``jobs``, ``journals``, ``log``, ``progress``,
``progress_display``, ``runtime``, ``malloc_tuning``.

May import: every other wing, ``bulkup.emulator`` only through ``bulkup.emulator.embedded`` and
the ``serve`` entry point.
"""
