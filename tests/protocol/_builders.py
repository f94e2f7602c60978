"""Shared builders and spec constants for the protocol tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bulkup.protocol import (
    Anchor,
    AutoColorCropOptions,
    AutoSetCreationOptions,
    AutoTransparentCropOptions,
    ColorManagementMode,
    ColorManagementOptions,
    Colorspace,
    Corner,
    EmailSetting,
    FillMethod,
    IllustratorOptions,
    IllustratorProcess,
    KnockoutBackgroundOptions,
    LayerNaming,
    ManualCropOptions,
    MediaOptions,
    PDFOptions,
    PDFProcess,
    PhotoshopLayerOptions,
    PhotoshopOptions,
    PhotoshopProcess,
    PostScriptOptions,
    PostScriptProcess,
    ThumbnailOptions,
    UnCompressOptions,
    UnCompressProcess,
    UnsharpMaskOptions,
    UploadPostJob,
)

# §3.3, verbatim.
SPEC_JOB_ORDER = (
    """
overwrite, readyForPublish, preservePublishState, createMask, preserveCrop,
manualCropOptions, autoColorCropOptions, autoTransparentCropOptions,
photoshopOptions, postScriptOptions, pdfOptions, mediaOptions, illustratorOptions,
colorManagementOptions, autoSetCreationOptions, projectHandleArray, emailSetting,
postHttpUrl, inDesignOptions, knockoutBackground, unsharpMaskOptions,
unCompressOptions, xmpKeywords
""".replace("\n", " ")
    .replace(",", " ")
    .split()
)

CROPS = ("manualCropOptions", "autoColorCropOptions", "autoTransparentCropOptions")

# §3.4 tables / examples, in the order they give.
NESTED_ORDER: dict[str, list[str]] = {
    "manualCropOptions": ["left", "right", "top", "bottom"],
    "autoColorCropOptions": ["corner", "tolerance"],
    "autoTransparentCropOptions": ["tolerance"],
    "photoshopOptions": ["process", "layerOptions"],
    "layerOptions": ["layerNaming", "anchor", "createTemplate", "extractText", "extendLayers"],
    "postScriptOptions": ["process", "resolution", "colorspace", "alpha", "extractSearchWords"],
    "pdfOptions": [
        "process",
        "resolution",
        "colorspace",
        "pdfCatalog",
        "extractSearchWords",
        "extractLinks",
    ],
    "mediaOptions": ["videoEncodingPresetsArray", "generateThumbnail", "thumbnailOptions"],
    "thumbnailOptions": ["thumbnailTime"],
    "illustratorOptions": ["process", "resolution", "colorSpace", "alpha"],
    "colorManagementOptions": ["colorManagement", "sourceProfileHandle", "outputProfileHandle"],
    "autoSetCreationOptions": ["autoSetsArray"],
    "autoSetsArray": ["items", "items"],
    "projectHandleArray": ["items", "items"],
    "videoEncodingPresetsArray": ["items"],
    "knockoutBackground": ["corner", "tolerance", "fillMethod"],
    "unsharpMaskOptions": ["amount", "radius", "threshold", "monochrome"],
    "unCompressOptions": ["process"],
    "inDesignOptions": ["alpha", "beta"],
}

_CROP_VALUES = {
    "manualCropOptions": (
        "manual_crop_options",
        ManualCropOptions(left=1, right=2, top=3, bottom=4),
    ),
    "autoColorCropOptions": (
        "auto_color_crop_options",
        AutoColorCropOptions(corner=Corner.UPPER_LEFT, tolerance=0.25),
    ),
    "autoTransparentCropOptions": (
        "auto_transparent_crop_options",
        AutoTransparentCropOptions(tolerance=0.5),
    ),
}


def full_job(crop: str = "manualCropOptions") -> UploadPostJob:
    """An UploadPostJob with every field and nested field set (one crop option, per D-20)."""
    attribute, value = _CROP_VALUES[crop]
    crop_kwargs: dict[str, object] = {attribute: value}
    return UploadPostJob(
        overwrite=True,
        ready_for_publish=False,
        preserve_publish_state=True,
        create_mask=False,
        preserve_crop=True,
        photoshop_options=PhotoshopOptions(
            process=PhotoshopProcess.MAINTAIN_LAYERS,
            layer_options=PhotoshopLayerOptions(
                layer_naming=LayerNaming.APPEND_NAME,
                anchor=Anchor.NORTHWEST,
                create_template=True,
                extract_text=False,
                extend_layers=True,
            ),
        ),
        post_script_options=PostScriptOptions(
            process=PostScriptProcess.RASTERIZE,
            resolution=150,
            colorspace=Colorspace.CMYK,
            alpha=True,
            extract_search_words=False,
        ),
        pdf_options=PDFOptions(
            process=PDFProcess.THUMBNAIL,
            resolution=72.5,
            colorspace=Colorspace.RGB,
            pdf_catalog=True,
            extract_search_words=True,
            extract_links=False,
        ),
        media_options=MediaOptions(
            video_encoding_presets_array=("v|1|1",),
            generate_thumbnail=True,
            thumbnail_options=ThumbnailOptions(thumbnail_time=1500),
        ),
        illustrator_options=IllustratorOptions(
            process=IllustratorProcess.RASTERIZE, resolution=300, color_space="Rgb", alpha=True
        ),
        color_management_options=ColorManagementOptions(
            color_management=ColorManagementMode.CONVERT,
            source_profile_handle="a|1|1|10",
            output_profile_handle="a|1|1|11",
        ),
        auto_set_creation_options=AutoSetCreationOptions(auto_sets_array=("s|1", "s|2")),
        project_handle_array=("p|1|7", "p|1|9"),
        email_setting=EmailSetting.ERROR_AND_WARNING,
        post_http_url="https://upload.example.test/scene7/UploadFile",
        in_design_options={"alpha": "1", "beta": "two"},
        knockout_background=KnockoutBackgroundOptions(
            corner=Corner.BOTTOM_RIGHT, tolerance=0.1, fill_method=FillMethod.MATCH_PIXEL
        ),
        unsharp_mask_options=UnsharpMaskOptions(amount=1.5, radius=2, threshold=6, monochrome=1),
        un_compress_options=UnCompressOptions(process=UnCompressProcess.UNCOMPRESS),
        xmp_keywords="red,blue\\,green",
        **crop_kwargs,  # type: ignore[arg-type]
    )


def local(tag: str) -> str:
    """The local part of an ElementTree tag."""
    return tag.rpartition("}")[2]


def child_names(element: ET.Element) -> list[str]:
    """Local names of an element's children, in document order."""
    return [local(child.tag) for child in element]


def texts(element: ET.Element) -> dict[str, str]:
    """Local name -> text ("" for empty) of an element's children."""
    return {local(child.tag): child.text or "" for child in element}
