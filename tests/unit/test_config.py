"""Config tests: defaults, example file, precedence, validation messages, sizes, URLs, secrets."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkup.config.load import load_config
from bulkup.config.model import UploadConfig, parse_size
from bulkup.errors import ConfigError, is_fatal
from bulkup.protocol import (
    Anchor,
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
    PhotoshopProcess,
    PostScriptOptions,
    ThumbnailOptions,
    UnCompressOptions,
    UnCompressProcess,
    UnsharpMaskOptions,
    UploadPostJob,
)
from bulkup.protocol.namespaces import NS_2014_04_03, NS_UNVERSIONED

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
CANARY = "Canary-Pa55w0rd-7f3e9b"
FIELD_NAMES = [f.name for f in dataclasses.fields(UploadConfig)]
MiB = 1024**2


def load(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> UploadConfig:
    """load_config with empty defaults for the layers not given."""
    return load_config(path=path, environ=environ or {}, overrides=overrides)


def write_toml(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    """Write a config file into tmp_path and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def uncommented_option_tables() -> dict[str, str]:
    """The example's commented [upload_params.<x>] blocks, uncommented, keyed by <x>."""
    blocks: dict[str, list[str]] = {}
    current: str | None = None
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        header = re.match(r"# (\[upload_params\.([\w.]+)\].*)", line)
        if header:
            current = header.group(2).split(".")[0]
            blocks.setdefault(current, []).append(header.group(1))
        elif current is not None and line.startswith("# ") and "=" in line:
            blocks[current].append(line[2:])
        else:
            current = None
    return {name: "\n".join(lines) + "\n" for name, lines in blocks.items()}


def uncommented_serve_table() -> str:
    """The example's commented [serve] section, uncommented."""
    text = EXAMPLE.read_text(encoding="utf-8")
    section = text[text.index("# [serve]") :]
    return "\n".join(line[2:] if line.startswith("# ") else "" for line in section.splitlines())


class TestExampleFile:
    def test_example_loads_to_the_defaults(self) -> None:
        """config.example.toml loads to exactly UploadConfig()."""
        assert load(EXAMPLE) == UploadConfig()

    @pytest.mark.parametrize("name", [n for n in FIELD_NAMES if n != "password"])
    def test_every_field_appears_in_the_example(self, name: str) -> None:
        """Every UploadConfig field has a line (commented or not) in config.example.toml."""
        text = EXAMPLE.read_text(encoding="utf-8")
        pattern = rf"^\[{name}\]" if name == "upload_params" else rf"^(# )?{name} = "
        assert re.search(pattern, text, re.MULTILINE), f"{name} missing from {EXAMPLE.name}"

    def test_example_explains_where_the_password_comes_from(self) -> None:
        """The example has no password key but names BULKUP_PASSWORD and password_file."""
        text = EXAMPLE.read_text(encoding="utf-8")
        assert "BULKUP_PASSWORD" in text
        assert not re.search(r"^password = ", text, re.MULTILINE)

    @pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(UploadPostJob)])
    def test_every_upload_params_field_appears_in_the_example(self, name: str) -> None:
        """Every UploadPostJob field appears as a key or a table in [upload_params]."""
        text = EXAMPLE.read_text(encoding="utf-8")
        section = text[text.index("[upload_params]") :]
        pattern = rf"^(# )?({name} = |\[upload_params\.{name}\])"
        assert re.search(pattern, section, re.MULTILINE), f"upload_params.{name} missing"

    def test_example_has_every_nested_table(self) -> None:
        """Each nested option type has a commented example table."""
        nested = {
            f.name
            for f in dataclasses.fields(UploadPostJob)
            if f.name.endswith("_options") or f.name == "knockout_background"
        }
        assert nested <= set(uncommented_option_tables())

    @pytest.mark.parametrize("name", sorted(uncommented_option_tables()))
    def test_each_commented_option_table_loads(self, tmp_path: Path, name: str) -> None:
        """Uncommenting one nested-table example gives a valid config with that option set."""
        config = load(write_toml(tmp_path, uncommented_option_tables()[name]))
        assert getattr(config.upload_params, name) is not None

    def test_serve_example_is_valid_for_the_emulator(self, tmp_path: Path) -> None:
        """The commented [serve] example, uncommented, loads in the emulator's settings."""
        from bulkup.emulator.settings import load_toml

        path = write_toml(tmp_path, uncommented_serve_table())
        settings = load_toml(path, tmp_path)
        assert [c.handle for c in settings.companies] == ["c|42"]
        assert [u.email for u in settings.users] == ["uploader@example.com"]

    def test_serve_table_is_ignored_by_the_uploader(self, tmp_path: Path) -> None:
        """A [serve] table (even a user password in it) does not affect load_config."""
        text = EXAMPLE.read_text(encoding="utf-8") + uncommented_serve_table()
        assert load(write_toml(tmp_path, text)) == UploadConfig()


class TestDefaults:
    def test_default_values(self) -> None:
        """The defaults are the documented ones."""
        config = UploadConfig()
        assert (config.concurrency, config.max_files_per_post, config.queue_size) == (8, 100, 1000)
        assert (config.max_concurrency, config.concurrency_cap) == (64, 8)
        assert (config.max_post_bytes, config.chunk_size) == (16 * MiB, MiB)
        assert config.max_file_size == 2 * 1024**3
        assert (config.connect_timeout_s, config.read_timeout_s) == (30.0, 300.0)
        assert config.stall_timeout_s == 120.0
        assert (config.max_attempts, config.backoff_base_s, config.backoff_cap_s) == (5, 1.0, 60.0)
        assert config.fault30000_retries == 2
        assert (config.keepalive_after_s, config.job_idle_timeout_s) == (1200.0, 1800.0)
        assert config.address_family == "ipv4"
        assert config.log_format == "auto"
        assert config.namespace == config.auth_namespace == NS_2014_04_03
        assert config.upload_url is None
        assert config.resolved_api_url is None

    def test_default_upload_params(self) -> None:
        """The default job options send the five vendor-required fields."""
        params = UploadConfig().upload_params
        assert (params.overwrite, params.ready_for_publish) == (True, False)
        assert (params.preserve_publish_state, params.create_mask) == (True, False)
        assert params.email_setting is EmailSetting.NONE

    def test_config_is_frozen_and_hashable(self) -> None:
        """A config cannot be changed in place and can be hashed."""
        config = UploadConfig()
        with pytest.raises(dataclasses.FrozenInstanceError):
            config.concurrency = 3  # type: ignore[misc]
        assert hash(config) == hash(UploadConfig())

    def test_fields_are_keyword_only(self) -> None:
        """Positional arguments are refused."""
        with pytest.raises(TypeError):
            UploadConfig("https://example.com/scene7/UploadFile")  # type: ignore[call-arg]

    def test_normalisations(self) -> None:
        """company_root gains a trailing slash; ints become floats; strs become Paths."""
        config = UploadConfig(
            company_root="Acme",
            connect_timeout_s=5,
            report="out.json",  # type: ignore[arg-type]
            include=["*.jpg"],  # type: ignore[arg-type]
            source_ip="2001:DB8:0:0::1",
            address_family="any",
        )
        assert config.company_root == "Acme/"
        assert isinstance(config.connect_timeout_s, float)
        assert config.report == Path("out.json")
        assert config.include == ("*.jpg",)
        assert config.source_ip == "2001:db8::1"
        assert UploadConfig(company_root="Acme/").company_root == "Acme/"

    def test_docstring_states_the_memory_formula(self) -> None:
        """The class docstring states how queue_size, concurrency and chunk_size bound memory."""
        doc = (UploadConfig.__doc__ or "").replace("`", "")
        assert "queue_size" in doc and "concurrency × chunk_size × 2" in doc


class TestPrecedence:
    @pytest.mark.parametrize(
        ("file_text", "environ", "overrides", "expected"),
        [
            ("", {}, {}, 8),
            ('concurrency = "auto"\n', {"BULKUP_CONCURRENCY": "6"}, {}, 6),
            ("concurrency = 4\n", {"BULKUP_CONCURRENCY": "Auto"}, {}, "auto"),
            ("concurrency = 4\n", {"BULKUP_CONCURRENCY": "6"}, {"concurrency": "auto"}, "auto"),
            ("concurrency = 4\n", {}, {}, 4),
            ("concurrency = 4\n", {"BULKUP_CONCURRENCY": "6"}, {}, 6),
            ("concurrency = 4\n", {"BULKUP_CONCURRENCY": "6"}, {"concurrency": 12}, 12),
            ("concurrency = 4\n", {"BULKUP_CONCURRENCY": "6"}, {"concurrency": None}, 6),
            ("concurrency = 4\n", {"BULKUP_CONCURRENCY": ""}, {}, 4),
            ("", {}, {"concurrency": 12}, 12),
        ],
    )
    def test_concurrency_layers(
        self,
        tmp_path: Path,
        file_text: str,
        environ: dict[str, str],
        overrides: dict[str, Any],
        expected: int | str,
    ) -> None:
        """Flags beat the environment, which beats the file, which beats the default."""
        path = write_toml(tmp_path, file_text)
        assert load(path, environ, **overrides).concurrency == expected

    def test_string_and_size_keys(self, tmp_path: Path) -> None:
        """Each key is taken from the highest layer that gives it, independently."""
        path = write_toml(
            tmp_path,
            'user = "file@example.com"\ncompany_handle = "c|1"\nmax_post_bytes = "8MiB"\n'
            'log_format = "json"\n',
        )
        environ = {"BULKUP_USER": "env@example.com", "BULKUP_MAX_POST_BYTES": "32MiB"}
        config = load(path, environ, max_post_bytes="64MiB", company_handle=None)
        assert config.user == "env@example.com"
        assert config.company_handle == "c|1"
        assert config.max_post_bytes == 64 * MiB
        assert config.log_format == "json"

    def test_server_url_from_environment_over_file(self, tmp_path: Path) -> None:
        """BULKUP_SERVER_URL replaces the file's server_url."""
        path = write_toml(tmp_path, 'server_url = "https://file.example/scene7/UploadFile"\n')
        environ = {"BULKUP_SERVER_URL": "http://127.0.0.1:8080/scene7/UploadFile"}
        assert load(path, environ).upload_url == "http://127.0.0.1:8080/scene7/UploadFile"

    def test_environment_conversions(self) -> None:
        """Environment strings become bools, floats, paths and pattern tuples."""
        config = load(
            environ={
                "BULKUP_FOLLOW_SYMLINKS": "yes",
                "BULKUP_DRY_RUN": "1",
                "BULKUP_INSECURE": "off",
                "BULKUP_READ_TIMEOUT_S": "12.5",
                "BULKUP_REPORT": "out/report.json",
                "BULKUP_EXCLUDE": "*.tmp, .git/*,,",
                "BULKUP_REGION": "emea",
                "BULKUP_IT_URL": "ignored: not an option",
            }
        )
        assert (config.follow_symlinks, config.dry_run, config.insecure) == (True, True, False)
        assert config.read_timeout_s == 12.5
        assert config.report == Path("out/report.json")
        assert config.exclude == ("*.tmp", ".git/*")
        assert config.region == "emea"

    def test_upload_params_override_mapping_merges_over_file(self, tmp_path: Path) -> None:
        """An upload_params mapping flag merges key by key over the file's table."""
        path = write_toml(
            tmp_path,
            '[upload_params]\nemail_setting = "Error"\n'
            "[upload_params.unsharp_mask_options]\namount = 1.5\nthreshold = 4\n",
        )
        config = load(
            path, upload_params={"overwrite": False, "unsharp_mask_options": {"threshold": 9}}
        )
        params = config.upload_params
        assert params.overwrite is False
        assert params.email_setting is EmailSetting.ERROR
        assert params.unsharp_mask_options == UnsharpMaskOptions(amount=1.5, threshold=9)

    def test_upload_params_override_object_replaces(self, tmp_path: Path) -> None:
        """An UploadPostJob given as a flag replaces the file's table entirely."""
        path = write_toml(tmp_path, '[upload_params]\nemail_setting = "Error"\n')
        job = UploadPostJob(
            overwrite=False,
            ready_for_publish=True,
            create_mask=True,
            email_setting=EmailSetting.ALL,
        )
        assert load(path, upload_params=job).upload_params == job

    def test_with_overrides(self) -> None:
        """with_overrides returns a validated copy; unknown or bad values raise ConfigError."""
        config = UploadConfig(region="na")
        changed = config.with_overrides(region=None, server_url="http://localhost:8080/x")
        assert changed.upload_url == "http://localhost:8080/x"
        assert config.region == "na"
        with pytest.raises(ConfigError, match="unknown key 'concurency'"):
            config.with_overrides(concurency=3)
        with pytest.raises(ConfigError, match="concurrency"):
            config.with_overrides(concurrency=0)


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "key"),
        [
            ({"server_url": "ftp://example.com/upload"}, "server_url"),
            ({"server_url": "not a url"}, "server_url"),
            ({"server_url": "https://"}, "server_url"),
            ({"server_url": 42}, "server_url"),
            ({"api_url": "file:///etc/passwd"}, "api_url"),
            ({"region": "us"}, "region"),
            ({"region": "NA"}, "region"),
            ({"staging": "yes"}, "staging"),
            ({"user": ""}, "user"),
            ({"company_handle": ""}, "company_handle"),
            ({"company_root": 5}, "company_root"),
            ({"job_name": "has|pipe"}, "job_name"),
            ({"job_name": "x" * 91}, "job_name"),
            ({"locale": "english"}, "locale"),
            ({"concurrency": 0}, "concurrency"),
            ({"concurrency": 257}, "concurrency"),
            ({"concurrency": True}, "concurrency"),
            ({"concurrency": 2.0}, "concurrency"),
            ({"concurrency": "automatic"}, "concurrency"),
            ({"max_concurrency": 0}, "max_concurrency"),
            ({"max_concurrency": 257}, "max_concurrency"),
            ({"max_post_bytes": 0}, "max_post_bytes"),
            ({"max_files_per_post": 0}, "max_files_per_post"),
            ({"max_file_size": -1}, "max_file_size"),
            ({"chunk_size": 4095}, "chunk_size"),
            ({"queue_size": 0}, "queue_size"),
            ({"source_ip": "300.1.1.1"}, "source_ip"),
            ({"source_ip": "localhost"}, "source_ip"),
            ({"source_ip": "::1"}, "source_ip"),
            ({"source_ip": "127.0.0.1", "address_family": "ipv6"}, "source_ip"),
            ({"address_family": "inet"}, "address_family"),
            ({"include": "*.jpg"}, "include"),
            ({"exclude": ("",)}, "exclude"),
            ({"follow_symlinks": 1}, "follow_symlinks"),
            ({"connect_timeout_s": 0}, "connect_timeout_s"),
            ({"read_timeout_s": float("inf")}, "read_timeout_s"),
            ({"read_timeout_s": float("nan")}, "read_timeout_s"),
            ({"stall_timeout_s": 0}, "stall_timeout_s"),
            ({"backoff_base_s": -1.0}, "backoff_base_s"),
            ({"backoff_cap_s": "1m"}, "backoff_cap_s"),
            ({"max_attempts": 0}, "max_attempts"),
            ({"fault30000_retries": -1}, "fault30000_retries"),
            ({"keepalive_after_s": -5.0}, "keepalive_after_s"),
            ({"job_idle_timeout_s": 0.0}, "job_idle_timeout_s"),
            ({"ca_bundle": 3}, "ca_bundle"),
            ({"namespace": "http://example.com/ns"}, "namespace"),
            ({"auth_namespace": ""}, "auth_namespace"),
            ({"fault_http_status_code": 199}, "fault_http_status_code"),
            ({"fault_http_status_code": 600}, "fault_http_status_code"),
            ({"report": ""}, "report"),
            ({"log_format": "xml"}, "log_format"),
            ({"upload_params": {"overwrite": True}}, "upload_params"),
        ],
    )
    def test_bad_value_names_its_key(self, kwargs: dict[str, Any], key: str) -> None:
        """Each bad value raises a fatal ConfigError whose message starts with its key."""
        with pytest.raises(ConfigError) as info:
            UploadConfig(**kwargs)
        assert str(info.value).startswith(key), str(info.value)
        assert is_fatal(info.value)

    @pytest.mark.parametrize(
        ("kwargs", "keys"),
        [
            (
                {"server_url": "https://a.example/scene7/UploadFile", "region": "na"},
                ("server_url", "region"),
            ),
            (
                {"server_url": "https://a.example/scene7/UploadFile", "staging": True},
                ("staging", "server_url"),
            ),
            ({"insecure": True, "ca_bundle": Path("ca.pem")}, ("insecure", "ca_bundle")),
            ({"keepalive_after_s": 1800.0}, ("keepalive_after_s", "job_idle_timeout_s")),
            (
                {"keepalive_after_s": 100.0, "job_idle_timeout_s": 60.0},
                ("keepalive_after_s", "job_idle_timeout_s"),
            ),
            ({"backoff_base_s": 10.0, "backoff_cap_s": 5.0}, ("backoff_cap_s", "backoff_base_s")),
        ],
    )
    def test_contradictions_name_both_keys(
        self, kwargs: dict[str, Any], keys: tuple[str, str]
    ) -> None:
        """Options that contradict each other are refused, naming both."""
        with pytest.raises(ConfigError) as info:
            UploadConfig(**kwargs)
        for key in keys:
            assert key in str(info.value)

    def test_accepted_edge_values(self) -> None:
        """Values at the edges of their ranges are accepted."""
        config = UploadConfig(
            concurrency=256,
            chunk_size=4096,
            max_attempts=1,
            fault30000_retries=0,
            fault_http_status_code=200,
            job_name="x" * 90,
            locale="en",
            source_ip="10.0.0.1",
            auth_namespace=NS_UNVERSIONED,
            insecure=True,
            region="apac",
            staging=True,
        )
        assert config.concurrency == 256

    def test_url_with_credentials_is_refused_without_echo(self) -> None:
        """A URL with user:password@ is refused and the message does not repeat it."""
        with pytest.raises(ConfigError, match="server_url") as info:
            UploadConfig(server_url=f"https://me:{CANARY}@example.com/scene7/UploadFile")
        assert CANARY not in str(info.value)


class TestFileErrors:
    def test_wrong_type_names_key_and_file(self, tmp_path: Path) -> None:
        """A value of the wrong type names the file, the key and the value."""
        path = write_toml(tmp_path, 'concurrency = "eight"\n')
        with pytest.raises(ConfigError) as info:
            load(path)
        assert str(info.value) == (f'{path}: concurrency must be an integer or "auto", got "eight"')

    def test_unknown_key_names_key_and_file(self, tmp_path: Path) -> None:
        """An unknown key names the file and the key, and suggests the close one."""
        path = write_toml(tmp_path, "concurency = 8\n")
        with pytest.raises(ConfigError) as info:
            load(path)
        message = str(info.value)
        assert message.startswith(f"{path}: unknown key 'concurency'")
        assert "'concurrency'" in message

    @pytest.mark.parametrize(
        ("text", "key"),
        [
            ('max_post_bytes = "lots"\n', "max_post_bytes"),
            ("chunk_size = 100\n", "chunk_size"),
            ("staging = 1\n", "staging"),
            ("include = [1, 2]\n", "include"),
            ('region = "mars"\n', "region"),
            ("keepalive_after_s = 2000\n", "keepalive_after_s"),
            ("read_timeout_s = true\n", "read_timeout_s"),
            ("report = 5\n", "report"),
            ("[upload_params]\nemail_setting = 3\n", "upload_params.email_setting"),
            ("upload_params = 3\n", "upload_params"),
            ("[upload_params]\nfoo = 1\n", "upload_params.foo"),
            ("[upload_params.pdf_options]\nproces = 'None'\n", "upload_params.pdf_options.proces"),
            ("[upload_params]\npdf_options = 'Rasterize'\n", "upload_params.pdf_options"),
            ("[nonsense]\nx = 1\n", "nonsense"),
        ],
    )
    def test_errors_name_file_and_key(self, tmp_path: Path, text: str, key: str) -> None:
        """Every error from a file value names the file and the key."""
        path = write_toml(tmp_path, text)
        with pytest.raises(ConfigError) as info:
            load(path)
        message = str(info.value)
        assert message.startswith(f"{path}: "), message
        assert key in message

    def test_password_in_file_is_refused(self, tmp_path: Path) -> None:
        """A password key in the file is refused, pointing at the alternatives, not echoing it."""
        path = write_toml(tmp_path, f'password = "{CANARY}"\n')
        with pytest.raises(ConfigError) as info:
            load(path)
        message = str(info.value)
        assert message.startswith(f"{path}: password")
        assert "password_file" in message and "BULKUP_PASSWORD" in message
        assert CANARY not in message

    def test_invalid_toml(self, tmp_path: Path) -> None:
        """A file that is not TOML raises ConfigError naming it."""
        path = write_toml(tmp_path, "concurrency = = 3\n")
        with pytest.raises(ConfigError, match=re.escape(str(path))):
            load(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A config file that cannot be read raises ConfigError naming it."""
        path = tmp_path / "absent.toml"
        with pytest.raises(ConfigError, match=re.escape(str(path))):
            load(path)

    def test_relative_paths_resolve_against_the_file_folder(self, tmp_path: Path) -> None:
        """password_file, ca_bundle and report are relative to the config file's folder."""
        folder = tmp_path / "etc"
        folder.mkdir()
        (folder / "pw").write_text("secret\n", encoding="utf-8")
        path = write_toml(
            folder,
            'password_file = "pw"\nca_bundle = "certs/ca.pem"\nreport = "/var/report.json"\n',
        )
        config = load(path)
        assert config.password_file == folder / "pw"
        assert config.ca_bundle == folder / "certs" / "ca.pem"
        assert config.report == Path("/var/report.json")
        assert config.password == "secret"

    def test_sizes_and_numbers_in_file(self, tmp_path: Path) -> None:
        """Sizes may be ints or unit strings; an int is accepted for a float option."""
        path = write_toml(
            tmp_path,
            'max_post_bytes = "64MiB"\nmax_file_size = 1000\nchunk_size = "64 KiB"\n'
            "connect_timeout_s = 5\n",
        )
        config = load(path)
        assert (config.max_post_bytes, config.max_file_size) == (64 * MiB, 1000)
        assert config.chunk_size == 64 * 1024
        assert config.connect_timeout_s == 5.0


class TestEnvironmentErrors:
    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("BULKUP_CONCURRENCY", "eight"),
            ("BULKUP_CONCURRENCY", "0"),
            ("BULKUP_STAGING", "maybe"),
            ("BULKUP_READ_TIMEOUT_S", "soon"),
            ("BULKUP_MAX_POST_BYTES", "16 MiBs"),
            ("BULKUP_REGION", "mars"),
            ("BULKUP_SOURCE_IP", "10.0.0.300"),
            ("BULKUP_UPLOAD_PARAMS", "overwrite=false"),
        ],
    )
    def test_bad_environment_value_names_the_variable(self, variable: str, value: str) -> None:
        """A bad environment value raises ConfigError naming the variable."""
        with pytest.raises(ConfigError) as info:
            load(environ={variable: value})
        assert str(info.value).startswith(f"{variable}: "), str(info.value)

    def test_contradiction_names_every_source(self, tmp_path: Path) -> None:
        """A contradiction between a file key and a variable names both sources."""
        path = write_toml(tmp_path, 'region = "na"\n')
        environ = {"BULKUP_SERVER_URL": "https://example.com/scene7/UploadFile"}
        with pytest.raises(ConfigError) as info:
            load(path, environ)
        message = str(info.value)
        assert str(path) in message and "BULKUP_SERVER_URL" in message

    def test_flag_errors_name_the_key(self) -> None:
        """A bad flag value names the key; unknown flag keys are refused."""
        with pytest.raises(ConfigError, match="^concurrency must be within 1..256"):
            load(concurrency=0)
        with pytest.raises(ConfigError, match="^max_post_bytes must be a size"):
            load(max_post_bytes="big")
        with pytest.raises(ConfigError, match="unknown option 'concurency'"):
            load(concurency=3)


class TestPassword:
    def test_password_from_environment(self) -> None:
        """BULKUP_PASSWORD sets the password."""
        assert load(environ={"BULKUP_PASSWORD": CANARY}).password == CANARY

    def test_password_file_is_read_and_stripped(self, tmp_path: Path) -> None:
        """password_file is read and only its trailing newline is stripped."""
        secret = tmp_path / "pw"
        secret.write_text(f" {CANARY} \r\n", encoding="utf-8")
        assert load(password_file=str(secret)).password == f" {CANARY} "
        environ = {"BULKUP_PASSWORD_FILE": str(secret)}
        assert load(environ=environ).password == f" {CANARY} "

    def test_password_flag_is_refused(self) -> None:
        """The password cannot be given as a flag; the message does not echo it."""
        with pytest.raises(ConfigError, match="BULKUP_PASSWORD") as info:
            load(password=CANARY)
        assert CANARY not in str(info.value)

    def test_unreadable_password_file(self, tmp_path: Path) -> None:
        """An unreadable password_file raises ConfigError naming it (and its source)."""
        missing = tmp_path / "nope"
        path = write_toml(tmp_path, f'password_file = "{missing}"\n')
        with pytest.raises(ConfigError) as info:
            load(path)
        message = str(info.value)
        assert message.startswith(f"{path}: password_file")
        assert str(missing) in message

    def test_password_file_errors_never_show_content(self, tmp_path: Path) -> None:
        """An empty or non-UTF-8 password file is refused without showing its content."""
        empty = tmp_path / "empty"
        empty.write_text("\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="empty"):
            load(password_file=empty)
        binary = tmp_path / "binary"
        binary.write_bytes(CANARY.encode() + b"\xff\xfe")
        with pytest.raises(ConfigError) as info:
            load(password_file=binary)
        assert CANARY not in str(info.value)

    def test_password_source_follows_layer_precedence(self, tmp_path: Path) -> None:
        """BULKUP_PASSWORD beats a file's password_file; a password_file flag beats both."""
        secret = tmp_path / "pw"
        secret.write_text("from-file\n", encoding="utf-8")
        path = write_toml(tmp_path, f'password_file = "{secret}"\n')
        environ = {"BULKUP_PASSWORD": "from-env"}
        assert load(path, environ).password == "from-env"
        assert load(path, environ, password_file=secret).password == "from-file"
        both = {"BULKUP_PASSWORD": "x", "BULKUP_PASSWORD_FILE": str(secret)}
        with pytest.raises(ConfigError, match="both"):
            load(environ=both)

    def test_password_never_in_repr_or_str(self) -> None:
        """repr() and str() of a config leave the password out."""
        config = UploadConfig(user="me@example.com", password=CANARY)
        assert CANARY not in repr(config)
        assert CANARY not in str(config)
        assert "me@example.com" in repr(config)

    @pytest.mark.parametrize(
        ("file_text", "environ", "overrides"),
        [
            ("concurrency = 0\n", {}, {}),
            ('concurrency = "x"\n', {}, {}),
            ("", {"BULKUP_CONCURRENCY": "x"}, {}),
            ("", {"BULKUP_REGION": "mars"}, {}),
            ("", {}, {"password": "again"}),
            ("", {}, {"server_url": f"https://u:{CANARY}@example.com/"}),
            ('[upload_params]\nemail_setting = "none"\n', {}, {}),
            ("upload_params = 1\n", {}, {}),
            ("bogus = 1\n", {}, {}),
            ("", {"BULKUP_PASSWORD_FILE": "/nonexistent/pw"}, {}),
        ],
    )
    def test_password_never_in_error_messages(
        self,
        tmp_path: Path,
        file_text: str,
        environ: dict[str, str],
        overrides: dict[str, Any],
    ) -> None:
        """Whatever goes wrong, the message (and its chain) never holds the password."""
        path = write_toml(tmp_path, file_text)
        with pytest.raises(ConfigError) as info:
            load(path, {"BULKUP_PASSWORD": CANARY, **environ}, **overrides)
        exc: BaseException | None = info.value
        while exc is not None:
            assert CANARY not in str(exc)
            exc = exc.__cause__ or exc.__context__

    def test_password_only_accepts_non_empty_strings(self) -> None:
        """A non-string password is refused without being shown."""
        with pytest.raises(ConfigError, match="^password must be a non-empty string$"):
            UploadConfig(password=12345)  # type: ignore[arg-type]


class TestParseSize:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (0, 0),
            (4096, 4096),
            ("4096", 4096),
            ("10B", 10),
            ("1K", 1000),
            ("1k", 1000),
            ("2KB", 2000),
            ("3M", 3_000_000),
            ("3mb", 3_000_000),
            ("1G", 10**9),
            ("1GB", 10**9),
            ("1T", 10**12),
            ("1KiB", 1024),
            ("64MiB", 64 * MiB),
            ("64mib", 64 * MiB),
            ("64MIB", 64 * MiB),
            ("2GiB", 2 * 1024**3),
            ("1TiB", 1024**4),
            ("1.5MiB", 3 * MiB // 2),
            (" 16 MiB ", 16 * MiB),
        ],
    )
    def test_good_sizes(self, value: str | int, expected: int) -> None:
        """Plain ints, decimal and binary units, any case, are parsed to bytes."""
        assert parse_size(value) == expected

    @pytest.mark.parametrize(
        "value",
        [
            "",
            "junk",
            "MiB",
            "-1",
            -1,
            "1.5",
            "0.1KiB",
            "1 Mo",
            "1e6",
            "1,000",
            "1MiBs",
            "1Ki",
            True,
            None,
            1.5,
            [1],
        ],
    )
    def test_bad_sizes(self, value: Any) -> None:
        """Junk, negatives, fractions of a byte and unknown units raise ConfigError."""
        with pytest.raises(ConfigError, match="size"):
            parse_size(value)

    @given(
        st.integers(min_value=0, max_value=10**6),
        st.sampled_from(
            [("KiB", 1024), ("MiB", 1024**2), ("GiB", 1024**3), ("KB", 1000), ("G", 10**9)]
        ),
    )
    def test_unit_multiplies(self, number: int, unit: tuple[str, int]) -> None:
        """<n><unit> is n times the unit's factor."""
        suffix, factor = unit
        assert parse_size(f"{number}{suffix}") == number * factor
        assert parse_size(f"{number}{suffix.lower()}") == number * factor


class TestUrls:
    @pytest.mark.parametrize(
        ("region", "staging", "upload", "api"),
        [
            (
                "na",
                False,
                "https://s7sps1ssl.scene7.com/scene7/UploadFile",
                "https://s7sps1apissl.scene7.com/scene7/services/IpsApiService",
            ),
            (
                "na",
                True,
                "https://s7sps1ssl-staging.scene7.com/scene7/UploadFile",
                "https://s7sps1apissl-staging.scene7.com/scene7/services/IpsApiService",
            ),
            (
                "emea",
                False,
                "https://s7sps3ssl.scene7.com/scene7/UploadFile",
                "https://s7sps3apissl.scene7.com/scene7/services/IpsApiService",
            ),
            (
                "emea",
                True,
                "https://s7sps3ssl-staging.scene7.com/scene7/UploadFile",
                "https://s7sps3apissl-staging.scene7.com/scene7/services/IpsApiService",
            ),
            (
                "apac",
                False,
                "https://s7sps5ssl.scene7.com/scene7/UploadFile",
                "https://s7sps5apissl.scene7.com/scene7/services/IpsApiService",
            ),
            (
                "apac",
                True,
                "https://s7sps5ssl-staging.scene7.com/scene7/UploadFile",
                "https://s7sps5apissl-staging.scene7.com/scene7/services/IpsApiService",
            ),
        ],
    )
    def test_region_urls(self, region: Any, staging: bool, upload: str, api: str) -> None:
        """A region gives the §1.1 upload and API URLs, staging honoured."""
        config = UploadConfig(region=region, staging=staging)
        assert config.upload_url == upload
        assert config.resolved_api_url == api

    def test_custom_server_url(self) -> None:
        """A custom server_url is used as is; its API URL is on the same origin."""
        config = UploadConfig(server_url="http://127.0.0.1:8080/scene7/UploadFile?x=1")
        assert config.upload_url == "http://127.0.0.1:8080/scene7/UploadFile?x=1"
        assert config.resolved_api_url == "http://127.0.0.1:8080/scene7/services/IpsApiService"

    def test_explicit_api_url_wins(self) -> None:
        """api_url is used whatever the server_url or region."""
        api = "https://api.example.com/ips/services/IpsApiService"
        assert UploadConfig(region="na", api_url=api).resolved_api_url == api
        config = UploadConfig(server_url="https://up.example.com/scene7/UploadFile", api_url=api)
        assert config.resolved_api_url == api

    def test_api_url_without_server(self) -> None:
        """api_url alone gives an API URL but no upload URL."""
        config = UploadConfig(api_url="https://api.example.com/scene7/services/IpsApiService")
        assert config.upload_url is None
        assert config.resolved_api_url == "https://api.example.com/scene7/services/IpsApiService"


class TestUploadParams:
    def test_nested_tables_build_option_objects(self, tmp_path: Path) -> None:
        """Nested tables become the matching option objects, enums converted."""
        path = write_toml(
            tmp_path,
            """
[upload_params]
overwrite = false
email_setting = "ErrorAndWarning"
preserve_crop = false
project_handle_array = ["p|1|7", "p|1|9"]
xmp_keywords = "red,shoe"

[upload_params.auto_color_crop_options]
corner = "UpperLeft"
tolerance = 0.25

[upload_params.photoshop_options]
process = "MaintainLayers"

[upload_params.photoshop_options.layer_options]
layer_naming = "Folders"
anchor = "Center"
extract_text = true

[upload_params.media_options]
video_encoding_presets_array = ["s|1|100"]
[upload_params.media_options.thumbnail_options]
thumbnail_time = 1500

[upload_params.knockout_background]
corner = "BottomRight"
fill_method = "MatchPixel"

[upload_params.un_compress_options]
process = "UnCompress"

[upload_params.in_design_options]
someElement = "text"
""",
        )
        params = load(path).upload_params
        assert params.overwrite is False
        assert params.ready_for_publish is False  # default kept
        assert params.email_setting is EmailSetting.ERROR_AND_WARNING
        assert params.project_handle_array == ("p|1|7", "p|1|9")
        assert params.auto_color_crop_options == AutoColorCropOptions(
            corner=Corner.UPPER_LEFT, tolerance=0.25
        )
        assert params.photoshop_options == PhotoshopOptions(
            process=PhotoshopProcess.MAINTAIN_LAYERS,
            layer_options=PhotoshopLayerOptions(
                layer_naming=LayerNaming.FOLDERS, anchor=Anchor.CENTER, extract_text=True
            ),
        )
        assert params.media_options == MediaOptions(
            video_encoding_presets_array=("s|1|100",),
            thumbnail_options=ThumbnailOptions(thumbnail_time=1500),
        )
        assert params.knockout_background == KnockoutBackgroundOptions(
            corner=Corner.BOTTOM_RIGHT, fill_method=FillMethod.MATCH_PIXEL
        )
        assert params.un_compress_options == UnCompressOptions(process=UnCompressProcess.UNCOMPRESS)
        assert dict(params.in_design_options or {}) == {"someElement": "text"}

    @pytest.mark.parametrize(
        ("name", "cls"),
        [
            ("manual_crop_options", ManualCropOptions),
            ("auto_color_crop_options", AutoColorCropOptions),
            ("auto_transparent_crop_options", AutoTransparentCropOptions),
            ("photoshop_options", PhotoshopOptions),
            ("post_script_options", PostScriptOptions),
            ("pdf_options", PDFOptions),
            ("media_options", MediaOptions),
            ("illustrator_options", IllustratorOptions),
            ("color_management_options", ColorManagementOptions),
            ("auto_set_creation_options", AutoSetCreationOptions),
            ("knockout_background", KnockoutBackgroundOptions),
            ("unsharp_mask_options", UnsharpMaskOptions),
            ("un_compress_options", UnCompressOptions),
        ],
    )
    def test_example_tables_give_the_right_types(
        self, tmp_path: Path, name: str, cls: type[object]
    ) -> None:
        """Each example nested table builds an object of its option class."""
        config = load(write_toml(tmp_path, uncommented_option_tables()[name]))
        assert isinstance(getattr(config.upload_params, name), cls)

    @pytest.mark.parametrize(
        ("text", "key"),
        [
            ('email_setting = "none"', "upload_params.email_setting"),
            (
                '[upload_params.photoshop_options]\nprocess = "maintainlayers"',
                "upload_params.photoshop_options.process",
            ),
            (
                '[upload_params.photoshop_options.layer_options]\nanchor = "Middle"',
                "upload_params.photoshop_options.layer_options.anchor",
            ),
            (
                "[upload_params.unsharp_mask_options]\namount = 9.0",
                "upload_params.unsharp_mask_options.amount",
            ),
            (
                "[upload_params.knockout_background]\ncorner = 'UpperLeft'",
                "upload_params.knockout_background.fill_method",
            ),
            ("overwrite = 'yes'", "upload_params.overwrite"),
            (
                (
                    "[upload_params.manual_crop_options]\nleft = 1\n"
                    "[upload_params.auto_transparent_crop_options]\ntolerance = 0.1"
                ),
                "upload_params.auto_transparent_crop_options",
            ),
        ],
    )
    def test_bad_option_names_its_key(self, tmp_path: Path, text: str, key: str) -> None:
        """A bad job option raises ConfigError naming the file and upload_params.<key>."""
        path = write_toml(tmp_path, f"[upload_params]\n{text}\n")
        with pytest.raises(ConfigError) as info:
            load(path)
        message = str(info.value)
        assert message.startswith(f"{path}: {key}"), message

    def test_bad_option_in_flag_mapping_names_its_key(self) -> None:
        """A bad value in an upload_params flag mapping names upload_params.<key>."""
        with pytest.raises(ConfigError, match="^upload_params.email_setting: "):
            load(upload_params={"email_setting": "Sometimes"})
        with pytest.raises(ConfigError, match="upload_params"):
            load(upload_params=5)

    def test_toml_parses_like_the_example(self) -> None:
        """The example's [upload_params] table holds exactly the five required defaults."""
        data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
        assert data["upload_params"] == {
            "overwrite": True,
            "ready_for_publish": False,
            "preserve_publish_state": True,
            "create_mask": False,
            "email_setting": "None",
        }
