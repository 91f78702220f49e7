"""The streaming zip writer (chalicelib/exports/zipstream.py): what it writes is read back by Python's
zipfile, checksums match, Zip64 records appear when forced or needed, a zip resumed from its state
equals one written at once, and the part buffer never holds more than a part plus a chunk."""
from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zipfile

import pytest

from chalicelib.exports.service import csv_cell, safe_name
from chalicelib.exports.zipstream import PartBuffer, ZipStream

ZIP64_END = struct.pack("<I", 0x06064B50)
ZIP64_LOCATOR = struct.pack("<I", 0x07064B50)


def write(entries, **kwargs) -> tuple[bytes, list[dict]]:
    out = io.BytesIO()
    zs = ZipStream(out.write, **kwargs)
    added = []
    for name, data, compress in entries:
        chunks = [data[i:i + 1000] for i in range(0, len(data), 1000)] or [b""]
        added.append(zs.add(name, chunks, compress=compress, size_hint=len(data)))
    zs.finish()
    assert zs.offset == len(out.getvalue())
    return out.getvalue(), added


ENTRIES = [
    ("Maya-ava_1/original.jpg", os.urandom(5000), False),
    ("Maya-ava_1/avatar.json", json.dumps({"name": "Maya", "ü": "ünïcode"}).encode() * 50, True),
    ("Maya-ava_1/usage.csv", b"occurredAt,appId\r\n" + b"2026-01-01,pose\r\n" * 200, True),
    ("Maya-ava_1/empty.txt", b"", True),
    ("manifest.json", b"{}", True),
]


@pytest.mark.parametrize("force_zip64", [False, True])
def test_the_archive_is_read_back_by_zipfile_with_matching_crcs_and_checksums(force_zip64):
    # GIVEN stored and deflated entries, one empty, names with a folder
    data, added = write(ENTRIES, force_zip64=force_zip64)

    # WHEN Python's zipfile reads it
    archive = zipfile.ZipFile(io.BytesIO(data))

    # THEN every entry is there, its CRC checks (testzip), its bytes and SHA-256 are what was written
    assert archive.testzip() is None
    assert archive.namelist() == [name for name, _, _ in ENTRIES]
    for (name, content, compress), entry in zip(ENTRIES, added):
        info = archive.getinfo(name)
        assert archive.read(name) == content
        assert info.compress_type == (zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)
        assert info.flag_bits & 0x08  # a data descriptor follows the data: the stream never seeks back
        assert entry == {"name": name, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    assert (ZIP64_END in data and ZIP64_LOCATOR in data) is force_zip64


def test_forced_zip64_writes_the_extra_fields_zipfile_reads_as_zip64():
    data, _ = write(ENTRIES[:2], force_zip64=True)
    archive = zipfile.ZipFile(io.BytesIO(data))
    for info in archive.infolist():
        assert info.extract_version >= 45  # Zip64
        header_id, size = struct.unpack("<HH", info.extra[:4])
        assert header_id == 0x0001 and size == 24  # sizes and offset in 8 bytes each
    # the end record points at the Zip64 end record (its fields are maxed out)
    eocd = data[data.rindex(struct.pack("<I", 0x06054B50)):]
    entries, cd_size, cd_offset = struct.unpack("<H", eocd[10:12])[0], *struct.unpack("<II", eocd[12:20])
    assert (entries, cd_size, cd_offset) == (0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)


def test_more_than_65535_entries_use_zip64_end_records_without_being_forced():
    out = io.BytesIO()
    zs = ZipStream(out.write)
    for i in range(65_536 + 10):
        zs.add(f"f/{i}", [b"x"], size_hint=1)
    zs.finish()
    data = out.getvalue()
    assert ZIP64_END in data[-200:]
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert len(archive.infolist()) == 65_546 and archive.read("f/65545") == b"x"


def test_offsets_past_4_gib_are_written_in_the_zip64_extra_field():
    """No 4 GiB file needed: a writer resumed at an offset past 4 GiB (as a later step would be) writes
    a central record whose offset is in the Zip64 extra field, and zipfile decodes it."""
    out = io.BytesIO()
    base = 5 * 1024 ** 3
    zs = ZipStream(out.write, offset=base)
    zs.add("big/after.bin", [b"abc"], size_hint=3)
    zs.finish()
    data = out.getvalue()
    assert ZIP64_END in data
    # Shift the offsets back so zipfile can read the tail alone: it sees a prefix of `base` bytes.
    info = zipfile.ZipFile(_Prefixed(data, base)).getinfo("big/after.bin")
    assert info.header_offset == base and info.file_size == 3


class _Prefixed(io.RawIOBase):
    """A file of `prefix` zero bytes (never stored) followed by `data`: enough for zipfile to read the
    central directory of an archive whose entries start past 4 GiB."""

    def __init__(self, data: bytes, prefix: int) -> None:
        self.data, self.prefix, self.pos = data, prefix, 0

    def seekable(self):
        return True

    def readable(self):
        return True

    def seek(self, offset, whence=0):
        size = self.prefix + len(self.data)
        self.pos = offset if whence == 0 else self.pos + offset if whence == 1 else size + offset
        return self.pos

    def tell(self):
        return self.pos

    def readinto(self, buffer):
        start = self.pos - self.prefix
        chunk = self.data[max(0, start):max(0, start) + len(buffer)] if start >= 0 else b"\0" * min(len(buffer), -start)
        buffer[:len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


def test_an_unknown_size_gets_zip64_sizes_in_its_descriptor():
    out = io.BytesIO()
    zs = ZipStream(out.write)
    zs.add("stream.json", iter([b"[", b"1,2", b"]"]), compress=True)  # no size hint: a generator
    zs.finish()
    archive = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    assert archive.read("stream.json") == b"[1,2]" and archive.testzip() is None


def test_a_wrong_size_hint_is_refused_rather_than_a_corrupt_header_written():
    zs = ZipStream(io.BytesIO().write)
    zs.add("ok", [b"x" * 10], size_hint=10)  # a small hint, a small file: fine
    zs.finish()
    with pytest.raises(ValueError):
        zs.add("after-finish", [b""], size_hint=0)


@pytest.mark.parametrize("name", ["", "/etc/passwd", "a\\b"])
def test_unusable_names_are_refused(name):
    with pytest.raises(ValueError):
        ZipStream(io.BytesIO().write).add(name, [b"x"], size_hint=1)


def test_a_zip_resumed_from_its_state_equals_one_written_at_once():
    # GIVEN the same entries written at once, and in two halves with the state carried over as JSON
    whole, _ = write(ENTRIES)
    first = io.BytesIO()
    zs = ZipStream(first.write)
    for name, data, compress in ENTRIES[:2]:
        zs.add(name, [data], compress=compress, size_hint=len(data))
    state = json.loads(json.dumps(zs.state()))
    second = io.BytesIO()
    zs = ZipStream.resume(second.write, state)
    for name, data, compress in ENTRIES[2:]:
        zs.add(name, [data], compress=compress, size_hint=len(data))
    zs.finish()
    # THEN the bytes are the same
    assert first.getvalue() + second.getvalue() == whole


def test_the_part_buffer_sends_exact_parts_and_keeps_the_rest_as_its_tail():
    parts = []
    buffer = PartBuffer(parts.append, part_size=100)
    for _ in range(25):
        buffer.write(b"x" * 9)
    assert [len(p) for p in parts] == [100, 100] and len(buffer.tail) == 25
    assert buffer.peak < 100 + 9
    resumed = PartBuffer(parts.append, part_size=100, tail=buffer.tail)
    resumed.write(b"y" * 80)
    resumed.flush_last()
    assert [len(p) for p in parts] == [100, 100, 100, 5] and resumed.tail == b""


@pytest.mark.parametrize("value, cell", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tcmd", "'\tcmd"), ("\rcmd", "'\rcmd"), ("pose.generate", "pose.generate"), ("", ""), (None, ""),
    (42, "42"), ({"k": "=1"}, '{"k": "=1"}'),
])
def test_csv_cells_that_a_spreadsheet_would_run_get_a_leading_quote(value, cell):
    assert csv_cell(value) == cell


@pytest.mark.parametrize("name, folder", [
    ("Maya B.", "Maya-B"), ("../../etc/passwd", "etc-passwd"), ("Zoë Ünïcode", "Zoe-Unicode"), ("", "avatar"),
    ("...", "avatar"), ("CON", "_CON"), ("a/b\\c:d*e?f", "a-b-c-d-e-f"), ("x" * 100, "x" * 40), ("日本語", "avatar"),
])
def test_folder_names_are_safe_everywhere(name, folder):
    assert safe_name(name) == folder
