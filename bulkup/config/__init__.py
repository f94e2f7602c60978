"""config: what a run is told to do. The settings model, loading it from file, environment and
flags, and the checks that name the culprit key when a value is wrong.

Owns: ``model`` (:class:`~bulkup.config.model.UploadConfig`), ``load`` (TOML, ``BULKUP_*``,
flags), ``checks`` (value checks), ``filters`` (include/exclude rules, ages), ``proxy`` (the proxy
URL rules, curl's). Pure: no sockets, no event loop.

May import: ``bulkup.protocol``, ``bulkup.errors``, ``bulkup.retry``, ``bulkup.targets``.
"""
