"""A company's assets on disk and the overwrite rules (spec D-15).

Asset names (file name without its last extension) are unique in a company and compared
case-insensitively; the company's ``overwrite_mode`` says what counts as "the same file". Folder
names share that name space (the vendor's single folder/asset name space): an asset may not take
the name of a folder, nor a folder the name of an asset, anywhere in the company. The index is
built once from the company folder, then kept in step with every commit.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

from bulkup.emulator.paths import Target, inside


@dataclass(slots=True)
class Asset:
    """One stored asset."""

    asset_key: str
    folder_key: str
    name_key: str
    path: str  # relative to the company folder, as stored
    handle: str
    published: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    """What processing made of one file (a D-24 log type and its message)."""

    log_type: str
    message: str
    asset_handle: str | None = None
    moved: bool = False  # the received file was moved into place


class CompanyAssets:
    """The asset index of one company folder."""

    def __init__(self, folder: Path, company_number: str, overwrite_mode: str) -> None:
        self.folder = folder
        self.overwrite_mode = overwrite_mode
        self._root = os.path.normpath(str(folder))
        self._number = company_number
        self._seq = itertools.count(1)
        self._by_asset: dict[str, list[Asset]] = {}
        # folder name (case-folded) -> one folder of that name, as stored ("a/b/")
        self._folders: dict[str, str] = {}
        # target folder -> its absolute path ("/" ended), checked and created once, not per file
        self._ready_folders: dict[str, str] = {}
        self._scan()

    def _scan(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for dirpath, dirs, names in os.walk(self.folder):
            rel = os.path.relpath(dirpath, self.folder)
            prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            for name in dirs:
                self._folders.setdefault(name.casefold(), f"{prefix}{name}/")
            for name in names:
                target = Target(folder=prefix, name=name)
                self._add(target, published=False)

    def _add(self, target: Target, *, published: bool) -> Asset:
        key = target.asset_name.casefold()
        asset = Asset(
            asset_key=key,
            folder_key=target.folder.casefold(),
            name_key=target.name.casefold(),
            path=target.path,
            handle=f"a|{self._number}|1|{next(self._seq)}",
            published=published,
        )
        self._by_asset.setdefault(key, []).append(asset)
        return asset

    def _matches(self, target: Target) -> tuple[list[Asset], list[Asset]]:
        """(assets that count as the same file, every asset with the same asset name)."""
        same_name = self._by_asset.get(target.asset_name.casefold(), [])
        folder, name = target.folder.casefold(), target.name.casefold()
        mode = self.overwrite_mode
        same_folder = "AnyFolder" not in mode
        any_ext = "AnyExt" in mode
        matches = [
            a
            for a in same_name
            if (not same_folder or a.folder_key == folder) and (any_ext or a.name_key == name)
        ]
        return matches, same_name

    def store(
        self,
        staged: str,
        target: Target,
        *,
        overwrite: bool,
        publish: bool,
        keep_publish_state: bool,
        root_prefix: str,
    ) -> Outcome:
        """Apply D-15 to one received file; moves ``staged`` into place or leaves it."""
        matches, same_name = self._matches(target)
        shown = root_prefix + target.path
        clash = self._name_space_clash(target, root_prefix)
        if clash is not None:
            return Outcome("UploadError", f"{shown}: name conflict: {clash}")
        if matches and not overwrite:
            return Outcome(
                "DuplicateSkipped", f"{shown}: already exists; not overwritten", matches[0].handle
            )
        if not matches and same_name:
            return Outcome(
                "UploadError",
                f"{shown}: name conflict: asset "
                f"{target.asset_name!r} already exists as "
                f"{root_prefix}{same_name[0].path}",
            )
        destination = self._destination(target)
        _move(staged, destination)
        if matches:
            return self._replace(matches, target, destination, publish, keep_publish_state, shown)
        asset = self._add(target, published=publish)
        return Outcome("UploadSuccess", f"{shown} was processed into IPS", asset.handle, moved=True)

    def _name_space_clash(self, target: Target, root_prefix: str) -> str | None:
        """Why ``target`` would put a folder and an asset under one name (D-15), or None."""
        folder = self._folders.get(target.asset_name.casefold())
        if folder is not None:
            return f"asset {target.asset_name!r} has the name of folder {root_prefix}{folder}"
        for segment in target.folder.split("/")[:-1]:
            same = self._by_asset.get(segment.casefold())
            if same:
                return f"folder {segment!r} has the name of asset {root_prefix}{same[0].path}"
        return None

    def _replace(
        self,
        matches: list[Asset],
        target: Target,
        destination: str,
        publish: bool,
        keep_publish_state: bool,
        shown: str,
    ) -> Outcome:
        kept = matches[0]
        for old in matches:
            old_file = os.path.join(self._root, old.path)
            if old_file != destination:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(old_file)
            self._by_asset[old.asset_key].remove(old)
        asset = self._add(target, published=kept.published if keep_publish_state else publish)
        asset.handle = kept.handle
        return Outcome(
            "FileUpdated", f"{shown} was processed into IPS (updated)", asset.handle, moved=True
        )

    def _destination(self, target: Target) -> str:
        """The absolute path for ``target``; its folder is checked and created on first use."""
        name = target.name
        if not name or "/" in name or name in (".", ".."):
            raise OSError(f"refusing to write outside the company folder: {target.path!r}")
        folder = self._ready_folders.get(target.folder)
        if folder is None:
            folder = self._prepare_folder(target.folder)
        return folder + name

    def _prepare_folder(self, relative: str) -> str:
        """Check that a target folder lies inside the company folder and create it, once per
        folder instead of a ``mkdir`` and a ``stat`` for every file."""
        folder = os.path.join(self._root, relative)
        if not inside(self._root, os.path.join(folder, "_")):
            raise OSError(f"refusing to write outside the company folder: {relative!r}")
        os.makedirs(folder, exist_ok=True)
        folder = folder if folder.endswith("/") else folder + "/"
        self._ready_folders[relative] = folder
        segments = relative.split("/")[:-1]
        for end, segment in enumerate(segments, 1):
            self._folders.setdefault(segment.casefold(), "".join(s + "/" for s in segments[:end]))
        return folder


def _move(staged: str, destination: str) -> None:
    """``os.replace``, recreating the target folder if it vanished since it was first used."""
    try:
        os.replace(staged, destination)
    except FileNotFoundError:
        if not os.path.exists(staged):
            raise
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        os.replace(staged, destination)
