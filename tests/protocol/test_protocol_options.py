"""Request model tests: validation messages, cross-field rules, enums, password secrecy."""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import sys
from collections.abc import Callable

import pytest

from bulkup import __version__, protocol
from bulkup.errors import ProtocolValueError, is_fatal
from bulkup.protocol import (
    Anchor,
    AuthHeader,
    AutoColorCropOptions,
    AutoSetCreationOptions,
    AutoTransparentCropOptions,
    ColorManagementOptions,
    Corner,
    EmailSetting,
    FillMethod,
    IllustratorOptions,
    KnockoutBackgroundOptions,
    LayerNaming,
    ManualCropOptions,
    MediaOptions,
    PDFOptions,
    PhotoshopLayerOptions,
    PhotoshopOptions,
    PostScriptOptions,
    ThumbnailOptions,
    UnCompressOptions,
    UnCompressProcess,
    UnsharpMaskOptions,
    UploadPostJob,
    UploadPostParam,
    processing,
)

from ._builders import full_job

SECRET = "Pa55-w0rd-never-shown"


def job(**overrides: object) -> UploadPostJob:
    """A minimal valid job with overrides."""
    fields: dict[str, object] = {
        "overwrite": True,
        "ready_for_publish": True,
        "create_mask": False,
        "email_setting": EmailSetting.NONE,
    }
    fields.update(overrides)
    return UploadPostJob(**fields)  # type: ignore[arg-type]


def param(**overrides: object) -> UploadPostParam:
    """A minimal valid follow-up param with overrides."""
    fields: dict[str, object] = {"company_handle": "c|1", "job_handle": "j|1"}
    fields.update(overrides)
    return UploadPostParam(**fields)  # type: ignore[arg-type]


def auth(**overrides: object) -> AuthHeader:
    """A valid AuthHeader whose password is SECRET, with overrides."""
    fields: dict[str, object] = {"user": "u@example.com", "password": SECRET}
    fields.update(overrides)
    return AuthHeader(**fields)  # type: ignore[arg-type]


INVALID: list[tuple[str, Callable[[], object]]] = [
    ("AuthHeader.user", lambda: auth(user="")),
    ("AuthHeader.user", lambda: auth(user=None)),
    ("AuthHeader.password", lambda: auth(password="")),
    ("AuthHeader.password", lambda: auth(password=b"bytes")),
    ("AuthHeader.locale", lambda: auth(locale="EN-us")),
    ("AuthHeader.locale", lambda: auth(locale="en_US")),
    ("AuthHeader.app_name", lambda: auth(app_name=1)),
    ("AuthHeader.gzip_response", lambda: auth(gzip_response=1)),
    ("AuthHeader.fault_http_status_code", lambda: auth(fault_http_status_code=100)),
    ("AuthHeader.fault_http_status_code", lambda: auth(fault_http_status_code=600)),
    ("AuthHeader.fault_http_status_code", lambda: auth(fault_http_status_code="200")),
    ("ManualCropOptions.left", lambda: ManualCropOptions(left=-1)),
    ("ManualCropOptions.bottom", lambda: ManualCropOptions(bottom=1.5)),  # type: ignore[arg-type]
    ("ManualCropOptions.top", lambda: ManualCropOptions(top=2**31)),
    ("AutoColorCropOptions.tolerance", lambda: AutoColorCropOptions(tolerance=1.01)),
    ("AutoColorCropOptions.tolerance", lambda: AutoColorCropOptions(tolerance=math.nan)),
    ("AutoColorCropOptions.corner", lambda: AutoColorCropOptions(corner="upperLeft")),
    ("AutoTransparentCropOptions.tolerance", lambda: AutoTransparentCropOptions(tolerance=-0.1)),
    ("AutoTransparentCropOptions.tolerance", lambda: AutoTransparentCropOptions(tolerance="0.5")),
    ("PhotoshopOptions.process", lambda: PhotoshopOptions(process="Rasterize")),
    ("PhotoshopOptions.layer_options", lambda: PhotoshopOptions(layer_options="x")),
    ("PhotoshopLayerOptions.layer_naming", lambda: PhotoshopLayerOptions(layer_naming="layername")),
    ("PhotoshopLayerOptions.anchor", lambda: PhotoshopLayerOptions(anchor="center")),
    ("PhotoshopLayerOptions.extract_text", lambda: PhotoshopLayerOptions(extract_text="true")),
    ("PostScriptOptions.process", lambda: PostScriptOptions(process="Thumbnail")),
    ("PostScriptOptions.resolution", lambda: PostScriptOptions(resolution=0)),
    ("PostScriptOptions.colorspace", lambda: PostScriptOptions(colorspace="RGB")),
    ("PDFOptions.process", lambda: PDFOptions(process="rasterize")),
    ("PDFOptions.resolution", lambda: PDFOptions(resolution=math.inf)),
    ("PDFOptions.pdf_catalog", lambda: PDFOptions(pdf_catalog=0)),
    (
        "MediaOptions.video_encoding_presets_array",
        lambda: MediaOptions(video_encoding_presets_array="v|1"),
    ),
    (
        "MediaOptions.video_encoding_presets_array",
        lambda: MediaOptions(video_encoding_presets_array=[1]),
    ),
    ("MediaOptions.thumbnail_options", lambda: MediaOptions(thumbnail_options=5)),
    ("ThumbnailOptions.thumbnail_time", lambda: ThumbnailOptions(thumbnail_time=-1)),
    ("ThumbnailOptions.thumbnail_time", lambda: ThumbnailOptions(thumbnail_time=True)),
    ("IllustratorOptions.process", lambda: IllustratorOptions(process="MaintainLayers")),
    ("IllustratorOptions.resolution", lambda: IllustratorOptions(resolution=0)),
    ("IllustratorOptions.color_space", lambda: IllustratorOptions(color_space="")),
    (
        "ColorManagementOptions.color_management",
        lambda: ColorManagementOptions(color_management="convert"),
    ),
    (
        "ColorManagementOptions.source_profile_handle",
        lambda: ColorManagementOptions(source_profile_handle=""),
    ),
    (
        "AutoSetCreationOptions.auto_sets_array",
        lambda: AutoSetCreationOptions(auto_sets_array=("",)),
    ),
    (
        "KnockoutBackgroundOptions.corner",
        lambda: KnockoutBackgroundOptions(corner="Center", fill_method="FloodFill"),
    ),
    (
        "KnockoutBackgroundOptions.fill_method",
        lambda: KnockoutBackgroundOptions(corner="UpperLeft", fill_method="floodFill"),
    ),
    (
        "KnockoutBackgroundOptions.tolerance",
        lambda: KnockoutBackgroundOptions(corner="UpperLeft", fill_method="FloodFill", tolerance=2),
    ),
    ("UnsharpMaskOptions.amount", lambda: UnsharpMaskOptions(amount=5.01)),
    ("UnsharpMaskOptions.amount", lambda: UnsharpMaskOptions(amount=-1)),
    ("UnsharpMaskOptions.radius", lambda: UnsharpMaskOptions(radius=250.5)),
    ("UnsharpMaskOptions.threshold", lambda: UnsharpMaskOptions(threshold=256)),
    ("UnsharpMaskOptions.threshold", lambda: UnsharpMaskOptions(threshold=6.0)),
    ("UnsharpMaskOptions.monochrome", lambda: UnsharpMaskOptions(monochrome=2)),
    ("UnsharpMaskOptions.monochrome", lambda: UnsharpMaskOptions(monochrome=True)),
    ("UnCompressOptions.process", lambda: UnCompressOptions(process="uncompress")),
    ("UnCompressOptions.process", lambda: UnCompressOptions(process="unCompress")),
    ("UnCompressOptions.process", lambda: UnCompressOptions(process=None)),
    ("UploadPostJob.overwrite", lambda: job(overwrite="yes")),
    ("UploadPostJob.ready_for_publish", lambda: job(ready_for_publish=None)),
    ("UploadPostJob.preserve_publish_state", lambda: job(preserve_publish_state=None)),
    ("UploadPostJob.create_mask", lambda: job(create_mask=1)),
    ("UploadPostJob.preserve_crop", lambda: job(preserve_crop="false")),
    ("UploadPostJob.email_setting", lambda: job(email_setting="none")),
    ("UploadPostJob.email_setting", lambda: job(email_setting=None)),
    ("UploadPostJob.pdf_options", lambda: job(pdf_options=PostScriptOptions())),
    ("UploadPostJob.project_handle_array", lambda: job(project_handle_array="p|1")),
    ("UploadPostJob.in_design_options", lambda: job(in_design_options={"bad name": "x"})),
    ("UploadPostJob.in_design_options", lambda: job(in_design_options={"@x": "x"})),
    ("UploadPostJob.in_design_options", lambda: job(in_design_options={"ok": 1})),
    ("UploadPostJob.in_design_options", lambda: job(in_design_options=["a"])),
    ("UploadPostJob.xmp_keywords", lambda: job(xmp_keywords=["a", "b"])),
    ("UploadPostParam.company_handle", lambda: param(company_handle="")),
    ("UploadPostParam.job_handle", lambda: param(job_handle="")),
    ("UploadPostParam.locale", lambda: param(locale="english")),
    ("UploadPostParam.description", lambda: param(description=3)),
    ("UploadPostParam.end_job", lambda: param(end_job=None)),
    ("UploadPostParam.upload_params", lambda: param(upload_params={"overwrite": True})),
]


class TestValidation:
    """Each invalid value raises ProtocolValueError naming ``Class.field``."""

    @pytest.mark.parametrize(("field", "build"), INVALID, ids=[f for f, _ in INVALID])
    def test_message_names_the_field(self, field: str, build: Callable[[], object]) -> None:
        """The error message starts with the offending Class.field."""
        with pytest.raises(ProtocolValueError, match="^" + re.escape(field) + ":"):
            build()

    def test_protocol_value_error_is_a_fatal_value_error(self) -> None:
        """ProtocolValueError is a ValueError and fatal."""
        with pytest.raises(ValueError) as caught:
            UnsharpMaskOptions(amount=9)
        assert is_fatal(caught.value)

    def test_boundaries_are_inclusive(self) -> None:
        """The documented range ends are accepted."""
        UnsharpMaskOptions(amount=0, radius=250, threshold=255, monochrome=0)
        UnsharpMaskOptions(amount=5.0, radius=0.0, threshold=0, monochrome=1)
        AutoColorCropOptions(tolerance=0)
        AutoTransparentCropOptions(tolerance=1)
        ThumbnailOptions(thumbnail_time=0)
        AuthHeader(user="u", password="p", fault_http_status_code=200, locale="en")


class TestCrossFieldRules:
    """At most one crop option (D-20); exactly one of jobName/jobHandle (D-05)."""

    @pytest.mark.parametrize(
        "crops",
        [
            ("manual_crop_options", "auto_color_crop_options"),
            ("manual_crop_options", "auto_transparent_crop_options"),
            ("auto_color_crop_options", "auto_transparent_crop_options"),
        ],
    )
    def test_two_crop_options_are_refused(self, crops: tuple[str, str]) -> None:
        """Two crop options raise an error naming both."""
        values = {
            "manual_crop_options": ManualCropOptions(),
            "auto_color_crop_options": AutoColorCropOptions(),
            "auto_transparent_crop_options": AutoTransparentCropOptions(),
        }
        with pytest.raises(ProtocolValueError) as caught:
            job(**{name: values[name] for name in crops})
        assert all(name in str(caught.value) for name in crops)
        assert "at most one crop option" in str(caught.value)

    def test_all_three_crop_options_are_refused(self) -> None:
        """Three crop options are refused too."""
        with pytest.raises(ProtocolValueError, match="crop"):
            job(
                manual_crop_options=ManualCropOptions(),
                auto_color_crop_options=AutoColorCropOptions(),
                auto_transparent_crop_options=AutoTransparentCropOptions(),
            )

    def test_neither_job_name_nor_handle(self) -> None:
        """Neither jobName nor jobHandle is refused, naming both fields."""
        with pytest.raises(ProtocolValueError, match="job_name.*job_handle"):
            UploadPostParam(company_handle="c")

    def test_both_job_name_and_handle(self) -> None:
        """Both jobName and jobHandle are refused."""
        with pytest.raises(ProtocolValueError, match="exactly one of job_name and job_handle"):
            UploadPostParam(company_handle="c", job_name="n", job_handle="j")

    def test_either_alone_is_fine(self) -> None:
        """jobName alone and jobHandle alone are accepted."""
        assert UploadPostParam(company_handle="c", job_name="n").job_handle is None
        assert UploadPostParam(company_handle="c", job_handle="j").job_name is None


class TestProcessingOptionsLoadOnUse:
    """The fifteen processing options live in ``bulkup.protocol.processing``, imported only when
    one is named or set (their classes were about 10 ms of every start)."""

    def test_a_default_job_never_loads_them(self) -> None:
        """The default config's job parameters are built and encoded without the module."""
        code = (
            "import sys\n"
            "import bulkup.cli.main, bulkup.pipeline.run\n"
            "from bulkup.config.model import UploadConfig\n"
            "from bulkup.protocol import UploadPostParam, encode_upload_post_param\n"
            "job = UploadConfig().upload_params\n"
            "encode_upload_post_param(UploadPostParam(company_handle='c|1', job_name='j',\n"
            "                                         upload_params=job))\n"
            "print('bulkup.protocol.processing' in sys.modules)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == "False"

    def test_the_package_names_them(self) -> None:
        assert protocol.PhotoshopOptions is processing.PhotoshopOptions
        for name in processing.__all__:
            assert getattr(protocol, name) is getattr(processing, name)
        with pytest.raises(AttributeError, match="NoSuchOptions"):
            getattr(protocol, "NoSuchOptions")  # noqa: B009 (a name that must not resolve)

    @pytest.mark.parametrize(("field", "cls"), processing.NESTED)
    def test_every_nested_field_checks_its_class(self, field: str, cls: type[object]) -> None:
        """Each field of ``NESTED`` is checked when set, alone (the check loads the module)."""
        with pytest.raises(
            ProtocolValueError, match=f"UploadPostJob.{field}: must be a {cls.__name__}, got object"
        ):
            job(**{field: object()})


class TestModelShape:
    """Dataclass properties: frozen, keyword-only, defaults, enum coercion, hashability."""

    def test_frozen(self) -> None:
        """Instances cannot be modified."""
        with pytest.raises(dataclasses.FrozenInstanceError):
            param().end_job = True  # type: ignore[misc]

    def test_keyword_only(self) -> None:
        """Positional construction is refused."""
        with pytest.raises(TypeError):
            UploadPostParam("c|1", "n")  # type: ignore[misc]

    def test_slotted(self) -> None:
        """Every type is slotted (no per-instance __dict__)."""
        assert not hasattr(full_job(), "__dict__")
        assert not hasattr(auth(), "__dict__")

    def test_upload_post_job_has_all_23_fields(self) -> None:
        """UploadPostJob carries the 23 §3.2 fields."""
        assert len(dataclasses.fields(UploadPostJob)) == 23

    def test_required_fields_of_d19(self) -> None:
        """overwrite, readyForPublish, createMask, emailSetting are required."""
        with pytest.raises(TypeError):
            UploadPostJob(overwrite=True, ready_for_publish=True, create_mask=True)  # type: ignore[call-arg]
        assert job().preserve_publish_state is True

    def test_auth_header_defaults(self) -> None:
        """appName defaults to bulkup and appVersion to the package version."""
        header = AuthHeader(user="u", password="p")
        assert (header.app_name, header.app_version) == ("bulkup", __version__)
        assert header.gzip_response is None and header.fault_http_status_code is None

    def test_exact_case_strings_become_members(self) -> None:
        """Exact-case strings are accepted and stored as enum members."""
        assert job(email_setting="JobCompletion").email_setting is EmailSetting.JOB_COMPLETION
        assert AutoColorCropOptions(corner="BottomLeft").corner is Corner.BOTTOM_LEFT
        layer = PhotoshopLayerOptions(layer_naming="Folders", anchor="Southeast")
        assert (layer.layer_naming, layer.anchor) == (LayerNaming.FOLDERS, Anchor.SOUTHEAST)
        knockout = KnockoutBackgroundOptions(corner="UpperRight", fill_method="MatchPixel")
        assert knockout.fill_method is FillMethod.MATCH_PIXEL
        assert UnCompressOptions(process="UnCompress").process is UnCompressProcess.UNCOMPRESS

    def test_handle_arrays_become_tuples(self) -> None:
        """Lists of handles are stored as tuples so the model stays hashable."""
        built = job(project_handle_array=["p|1", "p|2"])
        assert built.project_handle_array == ("p|1", "p|2")
        hash(built)

    def test_in_design_options_are_frozen_and_hashable(self) -> None:
        """inDesignOptions is copied into a read-only, hashable mapping."""
        source = {"a": "1"}
        built = job(in_design_options=source)
        source["b"] = "2"
        assert dict(built.in_design_options or {}) == {"a": "1"}
        assert hash(built) == hash(job(in_design_options={"a": "1"}))
        assert "ElementMap" in repr(built.in_design_options)

    def test_element_map_hash_agrees_with_equality(self) -> None:
        """Equal inDesign mappings in another order hash alike."""
        first = job(in_design_options={"a": "1", "b": "2"})
        second = job(in_design_options={"b": "2", "a": "1"})
        assert first == second and hash(first) == hash(second)


class TestPasswordSecrecy:
    """The AuthHeader password never shows in repr, str or validation messages."""

    def test_repr_and_str_hide_the_password(self) -> None:
        """repr() and str() omit the password."""
        header = auth(locale="en-US")
        assert SECRET not in repr(header)
        assert SECRET not in str(header)
        assert "password" not in repr(header)
        assert "u@example.com" in repr(header)

    def test_repr_of_a_container_hides_the_password(self) -> None:
        """A structure holding the header does not leak it either."""
        assert SECRET not in repr([auth()])
        assert SECRET not in repr({"auth": auth()})

    @pytest.mark.parametrize(
        "overrides",
        [
            {"locale": "xx_YY"},
            {"fault_http_status_code": 42},
            {"gzip_response": "yes"},
            {"user": ""},
            {"app_version": 1.0},
        ],
    )
    def test_validation_messages_do_not_include_the_password(
        self, overrides: dict[str, object]
    ) -> None:
        """Errors on other AuthHeader fields never include the password."""
        with pytest.raises(ProtocolValueError) as caught:
            auth(**overrides)
        assert SECRET not in str(caught.value)
        assert SECRET not in repr(caught.value)

    def test_wrong_password_type_does_not_echo_the_value(self) -> None:
        """A non-str password is refused without showing it."""
        with pytest.raises(ProtocolValueError) as caught:
            auth(password=SECRET.encode())
        assert SECRET not in str(caught.value)
