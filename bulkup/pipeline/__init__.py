"""pipeline: one upload run, from the source folders to the job's last POST.

The walker lists the sources into a bounded pipe; the planner drops what the journal says is
already on the server; packing groups files into size-capped POSTs; senders post them through
the transport; the job coordinator opens the job and sends ``endJob``; ``run`` wires them in one
TaskGroup.

Owns: ``run``, ``walker``, ``planner``, ``packing``, ``sender``, ``coordinator``, ``preflight``.

May import: ``bulkup.transport``, ``bulkup.journal``, ``bulkup.monitoring``, ``bulkup.config``,
``bulkup.protocol`` and the shared core (``errors``, ``models``, ``stats``, ``targets``,
``report``, ``retry``).
"""
