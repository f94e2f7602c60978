"""monitoring: what the server says happened to a job after its files were sent. The SOAP job
API (getActiveJobs, getJobLogs...), the per-file verdicts drawn from the job's log, and the
start-of-run probes (company root).

Owns: ``api`` (:class:`~bulkup.monitoring.api.JobMonitor`), ``confirm`` (verdicts per file),
``verdicts`` (fetching a job's outcome, the company-root probe).

May import: ``bulkup.transport``, ``bulkup.config``, ``bulkup.protocol`` and the shared core.
"""
