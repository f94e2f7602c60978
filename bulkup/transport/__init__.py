"""transport: the one seam between bulkup and the network. The aiohttp session and its
connections, TLS, proxies, the multipart bodies written into them, the file readers that feed
them (aiofiles, thread hops, the read helper process, ``sendfile``).

Nothing above this wing knows how the bytes reached the socket.

Owns: ``client`` (:class:`~bulkup.transport.client.UploadClient`), ``body`` (multipart bodies),
``reader`` (reading files for a body), ``read_helper`` (the helper child process's script).

May import: ``bulkup.config``, ``bulkup.protocol``, ``bulkup.errors``, ``bulkup.models``,
``bulkup.stats``, ``bulkup.retry``, ``bulkup.targets``.
"""
