"""String constants of the IPS API used by ``UploadPostJob`` and its nested types.

Every constant is case-sensitive on the wire (spec §3.5): ``UnCompress``, not ``uncompress``.
Members are :class:`~enum.StrEnum`, so they compare equal to (and serialise as) their wire value.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "Anchor",
    "ColorManagementMode",
    "Colorspace",
    "Corner",
    "EmailSetting",
    "FillMethod",
    "IllustratorProcess",
    "LayerNaming",
    "PDFProcess",
    "PhotoshopProcess",
    "PostScriptProcess",
    "UnCompressProcess",
]


class EmailSetting(StrEnum):
    """Which e-mail notifications a job sends (``UploadPostJob/emailSetting``)."""

    ALL = "All"
    ERROR = "Error"
    ERROR_AND_WARNING = "ErrorAndWarning"
    JOB_COMPLETION = "JobCompletion"
    NONE = "None"


class Corner(StrEnum):
    """AutoCrop corner, also used by ``KnockoutBackgroundOptions/corner``."""

    BOTTOM_LEFT = "BottomLeft"
    BOTTOM_RIGHT = "BottomRight"
    UPPER_LEFT = "UpperLeft"
    UPPER_RIGHT = "UpperRight"


class PhotoshopProcess(StrEnum):
    """``PhotoshopOptions/process``."""

    NONE = "None"
    MAINTAIN_LAYERS = "MaintainLayers"


class PostScriptProcess(StrEnum):
    """``PostScriptOptions/process``."""

    NONE = "None"
    RASTERIZE = "Rasterize"


class IllustratorProcess(StrEnum):
    """``IllustratorOptions/process``."""

    NONE = "None"
    RASTERIZE = "Rasterize"


class PDFProcess(StrEnum):
    """``PDFOptions/process``."""

    NONE = "None"
    RASTERIZE = "Rasterize"
    THUMBNAIL = "Thumbnail"


class Colorspace(StrEnum):
    """PostScript colorspace modes (``PDFOptions/colorspace``, ``PostScriptOptions/colorspace``)."""

    AUTO = "Auto"
    RGB = "Rgb"
    CMYK = "Cmyk"
    GRAY = "Gray"


class ColorManagementMode(StrEnum):
    """``ColorManagementOptions/colorManagement``."""

    DEFAULT = "Default"
    MAINTAIN_ORIGINAL = "MaintainOriginal"
    CONVERT = "Convert"


class LayerNaming(StrEnum):
    """``PhotoshopLayerOptions/layerNaming``."""

    LAYER_NAME = "LayerName"
    APPEND_NUMBER = "AppendNumber"
    APPEND_NAME = "AppendName"
    FOLDERS = "Folders"


class Anchor(StrEnum):
    """``PhotoshopLayerOptions/anchor``."""

    CENTER = "Center"
    NORTH = "North"
    NORTHWEST = "Northwest"
    WEST = "West"
    SOUTHWEST = "Southwest"
    SOUTH = "South"
    SOUTHEAST = "Southeast"
    EAST = "East"
    NORTHEAST = "Northeast"


class FillMethod(StrEnum):
    """``KnockoutBackgroundOptions/fillMethod``."""

    FLOOD_FILL = "FloodFill"
    MATCH_PIXEL = "MatchPixel"


class UnCompressProcess(StrEnum):
    """``UnCompressOptions/process``."""

    NONE = "None"
    UNCOMPRESS = "UnCompress"
