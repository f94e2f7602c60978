"""BatchPacker tests: hypothesis properties over entry streams, and the edge cases at the caps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkup.models import Batch, FileEntry
from bulkup.pipeline.packing import BatchPacker


def _entry(index: int, size: int, *, alone: bool = False) -> FileEntry:
    return FileEntry(
        path=f"/src/f{index}",
        rel_path=f"f{index}",
        target=f"Acme/f{index}",
        size=size,
        mtime_ns=0,
        needs_file_name_param=alone,
    )


def _pack(packer: BatchPacker, entries: list[FileEntry]) -> list[Batch]:
    batches: list[Batch] = []
    for entry in entries:
        batches.extend(packer.add(entry))
    rest = packer.flush()
    if rest is not None:
        batches.append(rest)
    return batches


@st.composite
def _streams(draw: st.DrawFn) -> tuple[int, int, list[FileEntry]]:
    max_bytes = draw(st.integers(min_value=1, max_value=1000))
    max_files = draw(st.integers(min_value=1, max_value=8))
    sizes = st.integers(min_value=0, max_value=2 * max_bytes)
    specs = draw(st.lists(st.tuples(sizes, st.integers(0, 9)), max_size=60))
    entries = [_entry(i, size, alone=flag == 0) for i, (size, flag) in enumerate(specs)]
    return max_bytes, max_files, entries


class TestPackingProperties:
    """Properties that hold for every stream of entries and every pair of caps."""

    @given(_streams())
    def test_every_entry_exactly_once_in_order(
        self, case: tuple[int, int, list[FileEntry]]
    ) -> None:
        """Concatenating the batches gives back the entries, once each, in arrival order."""
        max_bytes, max_files, entries = case
        batches = _pack(BatchPacker(max_bytes, max_files), entries)
        assert [entry for batch in batches for entry in batch.entries] == entries

    @given(_streams())
    def test_caps_respected(self, case: tuple[int, int, list[FileEntry]]) -> None:
        """No batch breaks a cap, except a single file above the byte cap."""
        max_bytes, max_files, entries = case
        for batch in _pack(BatchPacker(max_bytes, max_files), entries):
            assert len(batch) <= max_files
            if batch.total_bytes > max_bytes:
                assert len(batch) == 1
                assert batch.entries[0].size > max_bytes

    @given(_streams())
    def test_no_empty_batch(self, case: tuple[int, int, list[FileEntry]]) -> None:
        """Every batch holds at least one file."""
        max_bytes, max_files, entries = case
        assert all(len(batch) >= 1 for batch in _pack(BatchPacker(max_bytes, max_files), entries))

    @given(_streams())
    def test_alone_entries_travel_alone(self, case: tuple[int, int, list[FileEntry]]) -> None:
        """A D-17 entry or an oversize entry is the only file in its batch."""
        max_bytes, max_files, entries = case
        for batch in _pack(BatchPacker(max_bytes, max_files), entries):
            if any(e.needs_file_name_param or e.size > max_bytes for e in batch.entries):
                assert len(batch) == 1

    @given(_streams())
    def test_flush_returns_the_rest(self, case: tuple[int, int, list[FileEntry]]) -> None:
        """What add did not hand out, flush returns; a second flush returns None."""
        max_bytes, max_files, entries = case
        packer = BatchPacker(max_bytes, max_files)
        handed = [e for entry in entries for batch in packer.add(entry) for e in batch.entries]
        waiting = packer.pending
        rest = packer.flush()
        tail = [] if rest is None else list(rest.entries)
        assert len(tail) == waiting
        assert handed + tail == entries
        assert packer.flush() is None
        assert packer.pending == 0

    @given(_streams())
    def test_batches_closed_only_when_needed(self, case: tuple[int, int, list[FileEntry]]) -> None:
        """add closes a batch early only when it is full or cannot take the new entry."""
        max_bytes, max_files, entries = case
        packer = BatchPacker(max_bytes, max_files)
        for entry in entries:
            for batch in packer.add(entry):
                if batch.entries[-1] is entry or len(batch) == max_files:
                    continue
                assert (
                    entry.needs_file_name_param
                    or entry.size > max_bytes
                    or batch.total_bytes + entry.size > max_bytes
                )


class TestPackingEdges:
    """Exact-cap and tiny-cap cases."""

    def test_exactly_at_byte_cap(self) -> None:
        """Files summing exactly to the byte cap share a batch."""
        packer = BatchPacker(max_post_bytes=100, max_files_per_post=10)
        assert packer.add(_entry(1, 60)) == []
        assert packer.add(_entry(2, 40)) == []
        assert packer.flush() == Batch((_entry(1, 60), _entry(2, 40)))

    def test_one_byte_over(self) -> None:
        """One byte over the cap closes the open batch first."""
        packer = BatchPacker(max_post_bytes=100, max_files_per_post=10)
        packer.add(_entry(1, 60))
        assert packer.add(_entry(2, 41)) == [Batch((_entry(1, 60),))]
        assert packer.flush() == Batch((_entry(2, 41),))

    def test_file_exactly_cap_size_is_not_oversize(self) -> None:
        """A file of exactly the byte cap may be joined by 0-byte files."""
        packer = BatchPacker(max_post_bytes=100, max_files_per_post=10)
        assert packer.add(_entry(1, 100)) == []
        assert packer.add(_entry(2, 0)) == []
        assert packer.flush() == Batch((_entry(1, 100), _entry(2, 0)))

    def test_oversize_with_open_batch_gives_two(self) -> None:
        """An oversize file closes the open batch and travels alone: two batches at once."""
        packer = BatchPacker(max_post_bytes=100, max_files_per_post=10)
        packer.add(_entry(1, 10))
        assert packer.add(_entry(2, 101)) == [Batch((_entry(1, 10),)), Batch((_entry(2, 101),))]
        assert packer.flush() is None

    def test_file_name_param_entry_alone(self) -> None:
        """A D-17 entry travels alone even when small."""
        packer = BatchPacker(max_post_bytes=100, max_files_per_post=10)
        packer.add(_entry(1, 1))
        alone = _entry(2, 1, alone=True)
        assert packer.add(alone) == [Batch((_entry(1, 1),)), Batch((alone,))]
        assert packer.add(_entry(3, 1)) == []
        assert packer.flush() == Batch((_entry(3, 1),))

    def test_file_cap_of_one(self) -> None:
        """With a file cap of 1 every add hands out one batch."""
        packer = BatchPacker(max_post_bytes=100, max_files_per_post=1)
        for index in range(3):
            assert packer.add(_entry(index, 0)) == [Batch((_entry(index, 0),))]
        assert packer.flush() is None

    def test_byte_cap_of_one(self) -> None:
        """With a byte cap of 1, 1-byte files go one per batch and 0-byte files join them."""
        packer = BatchPacker(max_post_bytes=1, max_files_per_post=10)
        assert packer.add(_entry(1, 1)) == []
        assert packer.add(_entry(2, 0)) == []
        assert packer.add(_entry(3, 1)) == [Batch((_entry(1, 1), _entry(2, 0)))]
        assert packer.add(_entry(4, 2)) == [Batch((_entry(3, 1),)), Batch((_entry(4, 2),))]

    def test_zero_byte_files_count_against_file_cap(self) -> None:
        """0-byte files are files: the file cap closes the batch."""
        packer = BatchPacker(max_post_bytes=100, max_files_per_post=2)
        assert packer.add(_entry(1, 0)) == []
        assert packer.add(_entry(2, 0)) == [Batch((_entry(1, 0), _entry(2, 0)))]

    def test_flush_empty(self) -> None:
        """Flushing with nothing open returns None."""
        assert BatchPacker(10, 10).flush() is None

    @pytest.mark.parametrize(("max_bytes", "max_files"), [(0, 1), (1, 0), (-5, 3)])
    def test_caps_below_one_refused(self, max_bytes: int, max_files: int) -> None:
        """A cap below 1 is a ValueError."""
        with pytest.raises(ValueError, match="must be 1 or more"):
            BatchPacker(max_bytes, max_files)
