"""journal: what a run remembers across crashes. The SQLite store of jobs and files, the run's
session around it (paths, the lock per upload target, the writer thread), and the recorder that
turns pipeline results into journal rows and the report.

Owns: ``store``, ``session``, ``recorder``.

May import: ``bulkup.config``, ``bulkup.errors``, ``bulkup.models``, ``bulkup.report``,
``bulkup.targets``, ``bulkup.stats``.
"""
