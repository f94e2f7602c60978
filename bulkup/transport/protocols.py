"""What the wings above ask of the HTTP client, as protocols: the pipeline POSTs bodies
(:class:`UploadPoster`), the monitoring calls the SOAP API (:class:`SoapCaller`).

:class:`~bulkup.transport.client.UploadClient` is both; tests hand the coordinator, the sender
and the monitor fakes that implement only the method they use, and those type-check as they are.
"""

from __future__ import annotations

from typing import Any, Protocol

from bulkup.protocol import UploadPostReturn
from bulkup.transport.body import BatchBody


class UploadPoster(Protocol):
    """Sends one prepared body to the UploadFile servlet."""

    async def post(self, body: BatchBody) -> UploadPostReturn:
        """POST ``body``; the servlet's answer, or a classified error (:mod:`bulkup.errors`)."""
        ...


class SoapCaller(Protocol):
    """Makes one call to the SOAP monitoring API."""

    async def soap(self, url: str, operation: str, envelope: bytes) -> dict[str, Any]:
        """POST ``envelope`` to ``url``; the ``<operation>Return`` element, or a classified
        error."""
        ...
