"""Decoded answers of the UploadFile servlet (spec §4.1)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UploadPostReturn"]


@dataclass(frozen=True, kw_only=True, slots=True)
class UploadPostReturn:
    """A successful POST: the job's handle, to send as ``jobHandle`` in its later POSTs.

    Attributes:
        job_handle: The opaque, non-empty job handle issued by the server.
    """

    job_handle: str
