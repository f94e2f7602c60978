"""Validation of a job's ``uploadParams`` (``UploadPostJob``) on its opening POST.

Spec §3.2-§3.5 and D-03, D-19, D-20: required children, booleans, case-sensitive enums, ranges,
unknown elements, at most one crop option. The result is a plain dict (element name → value)
kept with the job and shown by the inspection route.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from bulkup.emulator.responses import Fault
from bulkup.emulator.xmlread import TRUE_WORDS, local_name

Check = Callable[[ET.Element, str], Any]

WIRE_ORDER = (
    "overwrite",
    "readyForPublish",
    "preservePublishState",
    "createMask",
    "preserveCrop",
    "manualCropOptions",
    "autoColorCropOptions",
    "autoTransparentCropOptions",
    "photoshopOptions",
    "postScriptOptions",
    "pdfOptions",
    "mediaOptions",
    "illustratorOptions",
    "colorManagementOptions",
    "autoSetCreationOptions",
    "projectHandleArray",
    "emailSetting",
    "postHttpUrl",
    "inDesignOptions",
    "knockoutBackground",
    "unsharpMaskOptions",
    "unCompressOptions",
    "xmpKeywords",
)
REQUIRED = ("overwrite", "readyForPublish", "createMask", "emailSetting")
CROP_OPTIONS = ("manualCropOptions", "autoColorCropOptions", "autoTransparentCropOptions")
ALIASES = {"IllustratorOptions": "illustratorOptions", "colorSpace": "colorspace"}


def _invalid(path: str) -> Fault:
    return Fault.ips(30001, f"Invalid parameter: {path}")


def _text(element: ET.Element) -> str:
    return (element.text or "").strip()


def boolean(element: ET.Element, path: str) -> bool:
    value = TRUE_WORDS.get(_text(element))
    if value is None:
        raise _invalid(path)
    return value


def string(element: ET.Element, path: str) -> str:
    return element.text or ""


def enum(*allowed: str) -> Check:
    def check(element: ET.Element, path: str) -> str:
        if _text(element) not in allowed:
            raise _invalid(path)
        return _text(element)

    return check


def number(
    low: float | None = None,
    high: float | None = None,
    *,
    integer: bool = False,
    choices: tuple[int, ...] = (),
) -> Check:
    def check(element: ET.Element, path: str) -> float | int:
        try:
            value: float | int = int(_text(element)) if integer else float(_text(element))
        except ValueError:
            raise _invalid(path) from None
        if (
            value != value
            or (low is not None and value < low)
            or (high is not None and value > high)
            or (choices and value not in choices)
        ):
            raise _invalid(path)
        return value

    return check


def handle_array(element: ET.Element, path: str) -> list[str]:
    items = []
    for item in element:
        if local_name(item.tag) != "items":
            raise _invalid(f"{path}/{local_name(item.tag)}")
        items.append(_text(item))
    return items


def keywords(element: ET.Element, path: str) -> str:
    """``xmpKeywords`` as text, or as ``<items>`` children (D-19)."""
    if len(element):
        return ",".join(handle_array(element, path))
    return element.text or ""


def opaque(element: ET.Element, path: str) -> str:
    """``inDesignOptions``: accepted, content ignored (its type is undocumented)."""
    return "(ignored)"


def nested(schema: dict[str, Check], required: tuple[str, ...] = ()) -> Check:
    def check(element: ET.Element, path: str) -> dict[str, Any]:
        return read_children(element, path, schema, required)

    return check


TOLERANCE = number(0.0, 1.0)
CORNERS = enum("UpperLeft", "BottomLeft", "UpperRight", "BottomRight")
COLORSPACES = enum("Auto", "Rgb", "Cmyk", "Gray")

SCHEMA: dict[str, Check] = {
    "overwrite": boolean,
    "readyForPublish": boolean,
    "preservePublishState": boolean,
    "createMask": boolean,
    "preserveCrop": boolean,
    "manualCropOptions": nested(
        {k: number(integer=True) for k in ("left", "right", "top", "bottom")}
    ),
    "autoColorCropOptions": nested({"corner": CORNERS, "tolerance": TOLERANCE}),
    "autoTransparentCropOptions": nested({"tolerance": TOLERANCE}),
    "photoshopOptions": nested(
        {
            "process": enum("None", "MaintainLayers"),
            "layerOptions": nested(
                {
                    "layerNaming": enum("LayerName", "AppendNumber", "AppendName", "Folders"),
                    "anchor": enum(
                        "Center",
                        "North",
                        "Northwest",
                        "West",
                        "Southwest",
                        "South",
                        "Southeast",
                        "East",
                        "Northeast",
                    ),
                    "createTemplate": boolean,
                    "extractText": boolean,
                    "extendLayers": boolean,
                }
            ),
        }
    ),
    "postScriptOptions": nested(
        {
            "process": enum("None", "Rasterize"),
            "resolution": number(0.0),
            "colorspace": COLORSPACES,
            "alpha": boolean,
            "extractSearchWords": boolean,
        }
    ),
    "pdfOptions": nested(
        {
            "process": enum("None", "Rasterize", "Thumbnail"),
            "resolution": number(0.0),
            "colorspace": COLORSPACES,
            "pdfCatalog": boolean,
            "extractSearchWords": boolean,
            "extractLinks": boolean,
        }
    ),
    "mediaOptions": nested(
        {
            "videoEncodingPresetsArray": handle_array,
            "generateThumbnail": boolean,
            "thumbnailOptions": nested({"thumbnailTime": number(0, integer=True)}),
        }
    ),
    "illustratorOptions": nested(
        {
            "process": enum("None", "Rasterize"),
            "resolution": number(0.0),
            "colorspace": string,
            "alpha": boolean,
        }
    ),
    "colorManagementOptions": nested(
        {
            "colorManagement": enum("Default", "MaintainOriginal", "Convert"),
            "sourceProfileHandle": string,
            "outputProfileHandle": string,
        }
    ),
    "autoSetCreationOptions": nested({"autoSetsArray": handle_array}),
    "projectHandleArray": handle_array,
    "emailSetting": enum("All", "Error", "ErrorAndWarning", "JobCompletion", "None"),
    "postHttpUrl": string,
    "inDesignOptions": opaque,
    "knockoutBackground": nested(
        {
            "corner": CORNERS,
            "tolerance": TOLERANCE,
            "fillMethod": enum("FloodFill", "MatchPixel"),
        },
        required=("corner", "fillMethod"),
    ),
    "unsharpMaskOptions": nested(
        {
            "amount": number(0.0, 5.0),
            "radius": number(0.0, 250.0),
            "threshold": number(0, 255, integer=True),
            "monochrome": number(integer=True, choices=(0, 1)),
        }
    ),
    "unCompressOptions": nested({"process": enum("None", "UnCompress")}, required=("process",)),
    "xmpKeywords": keywords,
}


def read_children(
    element: ET.Element, path: str, schema: dict[str, Check], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Check every child against ``schema``; unknown or repeated children are 30001."""
    present = {ALIASES.get(local_name(node.tag), local_name(node.tag)) for node in element}
    for name in required:
        if name not in present:
            raise Fault.ips(
                30002, f"Missing parameter: {path}/{name}" if path else f"Missing parameter: {name}"
            )
    values: dict[str, Any] = {}
    for node in element:
        name = ALIASES.get(local_name(node.tag), local_name(node.tag))
        where = f"{path}/{name}" if path else name
        check = schema.get(name)
        if check is None or name in values:
            raise _invalid(where)
        values[name] = check(node, where)
    return values


def validate_upload_params(element: ET.Element | None, *, strict_order: bool) -> dict[str, Any]:
    """The job's options from its opening POST, or the D-21 row 16/17 fault."""
    if element is None:
        raise Fault.ips(30002, "Missing parameter: uploadParams")
    values = read_children(element, "", SCHEMA, REQUIRED)
    if sum(name in values for name in CROP_OPTIONS) > 1:
        raise _invalid("more than one crop option")
    if strict_order:
        _check_order(element)
    return values


def _check_order(element: ET.Element) -> None:
    """Optional strict mode (D-03): children in the §3.3 sequence."""
    positions = [
        WIRE_ORDER.index(ALIASES.get(local_name(c.tag), local_name(c.tag))) for c in element
    ]
    for before, after, node in zip(positions, positions[1:], list(element)[1:], strict=False):
        if after < before:
            raise _invalid(f"{local_name(node.tag)} (out of order)")
