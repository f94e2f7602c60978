"""XML namespaces of the IPS API (spec §2.6).

The client writes its request parts in :data:`NS_2014_04_03` by default (D-02); the decoder
ignores namespaces entirely and matches elements by local name (spec §4.5).
"""

from __future__ import annotations

__all__ = [
    "KNOWN_NAMESPACES",
    "NS_2008_01_15",
    "NS_2008_09_10",
    "NS_2009_07_31",
    "NS_2010_01_31",
    "NS_2012_02_14",
    "NS_2013_02_15",
    "NS_2014_04_03",
    "NS_LEGACY_AUTH",
    "NS_UNVERSIONED",
]

NS_2014_04_03 = "http://www.scene7.com/IpsApi/xsd/2014-04-03"
"""API 6.8 / 2014R1: the namespace of the UploadFile example and the client's default."""
NS_2013_02_15 = "http://www.scene7.com/IpsApi/xsd/2013-02-15"
"""API 6.6 / 2013R1."""
NS_2012_02_14 = "http://www.scene7.com/IpsApi/xsd/2012-02-14"
"""API 6.0 / 2012R1."""
NS_2010_01_31 = "http://www.scene7.com/IpsApi/xsd/2010-01-31"
"""API 4.5."""
NS_2009_07_31 = "http://www.scene7.com/IpsApi/xsd/2009-07-31"
"""API 4.4."""
NS_2008_09_10 = "http://www.scene7.com/IpsApi/xsd/2008-09-10"
"""API 4.2."""
NS_2008_01_15 = "http://www.scene7.com/IpsApi/xsd/2008-01-15"
"""API 4.0."""
NS_UNVERSIONED = "http://www.scene7.com/IpsApi/xsd"
"""Pre-4.0 namespace; also that of fault documents and, per the SOAP chapter, of ``authHeader``."""

NS_LEGACY_AUTH = "http://www.scene7.com/IpsApi"
"""Namespace of the deprecated pre-3.8 ``AuthUser``/``AuthPassword`` SOAP headers (not in §2.6)."""

KNOWN_NAMESPACES: tuple[str, ...] = (
    NS_2014_04_03,
    NS_2013_02_15,
    NS_2012_02_14,
    NS_2010_01_31,
    NS_2009_07_31,
    NS_2008_09_10,
    NS_2008_01_15,
    NS_UNVERSIONED,
)
"""Every namespace of the §2.6 table, newest first."""
