"""A zip writer for a stream that cannot seek back: every entry is written with a data descriptor
(general purpose flag bit 3), so its CRC and sizes follow its data, and Zip64 records are written
wherever a size, an offset or the entry count passes what the classic format holds (or always,
with `force_zip64`, so the Zip64 path is testable on small files).

The writer holds only the central directory records (a few dozen bytes per entry) and hands every
byte it produces to `sink` as it goes: memory stays bounded by the chunk size of the caller, not by
the archive. Its state (`state()` / `ZipStream.resume`) is plain JSON, so an archive begun in one
Lambda invocation is finished by the next (chalicelib/exports/service.py).

Images are stored (they are compressed already); text entries are deflated (zlib, raw stream).
Format: PKWARE APPNOTE 6.3.x sections 4.3.7 (local header), 4.3.9 (data descriptor), 4.3.12
(central directory), 4.3.14-4.3.16 (Zip64 end records), 4.5.3 (Zip64 extra field).
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from typing import Callable, Iterable

STORED, DEFLATED = 0, 8
ZIP32_MAX = 0xFFFFFFFF
ZIP16_MAX = 0xFFFF
_FLAGS = 0x0008 | 0x0800  # data descriptor follows; names are UTF-8
_VERSION_ZIP64 = 45
_VERSION_DEFAULT = 20
_MADE_BY = (3 << 8) | _VERSION_ZIP64  # UNIX, spec 4.5
# A fixed timestamp keeps an archive's bytes a function of its contents (1 Jan 2026 00:00).
_DOS_TIME, _DOS_DATE = 0, ((2026 - 1980) << 9) | (1 << 5) | 1


class ZipStream:
    """`zs = ZipStream(sink)`; `zs.add(name, chunks)` per file; `zs.finish()` once."""

    def __init__(self, sink: Callable[[bytes], None], *, force_zip64: bool = False, offset: int = 0,
                 entries: list[dict] | None = None) -> None:
        self._sink = sink
        self.force_zip64 = force_zip64
        self.offset = offset  # bytes written so far (the next local header's offset)
        self.entries: list[dict] = list(entries or [])  # {name, crc, csize, usize, offset, method, zip64}
        self.finished = False

    # ---- state across invocations -------------------------------------------------------------
    def state(self) -> dict:
        return {"offset": self.offset, "entries": self.entries, "forceZip64": self.force_zip64}

    @classmethod
    def resume(cls, sink: Callable[[bytes], None], state: dict) -> "ZipStream":
        return cls(sink, force_zip64=bool(state.get("forceZip64")), offset=int(state["offset"]),
                   entries=state.get("entries") or [])

    def _write(self, data: bytes) -> None:
        if data:
            self._sink(data)
            self.offset += len(data)

    # ---- entries ------------------------------------------------------------------------------
    def add(self, name: str, chunks: Iterable[bytes], *, compress: bool = False,
            size_hint: int | None = None) -> dict:
        """Write one entry from `chunks`; answers {name, size, sha256} of the uncompressed bytes.

        The entry's local header carries a Zip64 extra field (and its descriptor 8-byte sizes) when
        forced, when the size is unknown or may pass 4 GiB (`size_hint`), so a stream never has to
        go back to widen a header."""
        if self.finished:
            raise ValueError("the archive is finished")
        encoded = name.encode("utf-8")
        if not encoded or len(encoded) > ZIP16_MAX or name.startswith("/") or "\\" in name:
            raise ValueError(f"unusable entry name {name!r}")
        zip64 = self.force_zip64 or size_hint is None or size_hint >= ZIP32_MAX - (1 << 20)
        method = DEFLATED if compress else STORED
        header_offset = self.offset
        extra = struct.pack("<HHQQ", 0x0001, 16, 0, 0) if zip64 else b""
        sizes = ZIP32_MAX if zip64 else 0
        self._write(struct.pack("<IHHHHHIIIHH", 0x04034B50, _VERSION_ZIP64 if zip64 else _VERSION_DEFAULT,
                                _FLAGS, method, _DOS_TIME, _DOS_DATE, 0, sizes, sizes, len(encoded), len(extra))
                    + encoded + extra)
        crc, usize, csize = 0, 0, 0
        digest = hashlib.sha256()
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15) if compress else None
        for chunk in chunks:
            if not chunk:
                continue
            crc = zlib.crc32(chunk, crc)
            usize += len(chunk)
            digest.update(chunk)
            out = compressor.compress(chunk) if compressor else chunk
            csize += len(out)
            self._write(out)
        if compressor:
            tail = compressor.flush()
            csize += len(tail)
            self._write(tail)
        if not zip64 and (usize >= ZIP32_MAX or csize >= ZIP32_MAX):
            # The hint was wrong: a classic descriptor cannot hold these sizes.
            raise ValueError(f"{name}: {usize} bytes written after a hint of {size_hint}")
        self._write(struct.pack("<IIQQ" if zip64 else "<IIII", 0x08074B50, crc, csize, usize))
        self.entries.append({"name": name, "crc": crc, "csize": csize, "usize": usize, "offset": header_offset,
                             "method": method, "zip64": zip64})
        return {"name": name, "size": usize, "sha256": digest.hexdigest()}

    def add_bytes(self, name: str, data: bytes, *, compress: bool = True) -> dict:
        return self.add(name, [data], compress=compress, size_hint=len(data))

    # ---- the end ------------------------------------------------------------------------------
    def finish(self) -> None:
        """The central directory, then (when needed) the Zip64 end record and locator, then the end record."""
        if self.finished:
            raise ValueError("the archive is finished")
        cd_start = self.offset
        for e in self.entries:
            self._write(_central_record(e, self.force_zip64))
        cd_size = self.offset - cd_start
        count = len(self.entries)
        zip64 = (self.force_zip64 or count >= ZIP16_MAX or cd_start >= ZIP32_MAX or cd_size >= ZIP32_MAX)
        if zip64:
            end64 = self.offset
            self._write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, _MADE_BY, _VERSION_ZIP64, 0, 0,
                                    count, count, cd_size, cd_start))
            self._write(struct.pack("<IIQI", 0x07064B50, 0, end64, 1))
        self._write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(count, ZIP16_MAX) if not zip64 else ZIP16_MAX,
                                min(count, ZIP16_MAX) if not zip64 else ZIP16_MAX,
                                ZIP32_MAX if zip64 else cd_size, ZIP32_MAX if zip64 else cd_start, 0))
        self.finished = True


def _central_record(e: dict, force: bool) -> bytes:
    name = e["name"].encode("utf-8")
    usize, csize, offset = int(e["usize"]), int(e["csize"]), int(e["offset"])
    # Zip64 extra: only the fields whose 32-bit slot is maxed, in this order (APPNOTE 4.5.3).
    fields = []
    big = force or bool(e.get("zip64"))
    if big or usize >= ZIP32_MAX:
        fields.append(usize)
        usize = ZIP32_MAX
    if big or csize >= ZIP32_MAX:
        fields.append(csize)
        csize = ZIP32_MAX
    if big or offset >= ZIP32_MAX:
        fields.append(offset)
        offset = ZIP32_MAX
    extra = struct.pack("<HH", 0x0001, 8 * len(fields)) + struct.pack(f"<{len(fields)}Q", *fields) if fields else b""
    version = _VERSION_ZIP64 if fields else _VERSION_DEFAULT
    external = (0o100644 << 16)  # a regular file, rw-r--r--
    return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, _MADE_BY, version, _FLAGS, int(e["method"]), _DOS_TIME,
                       _DOS_DATE, int(e["crc"]), csize, usize, len(name), len(extra), 0, 0, 0, external,
                       offset) + name + extra


class PartBuffer:
    """Collects the archive's bytes and hands them on in parts of exactly `part_size` bytes (S3
    multipart: every part but the last ≥ 5 MiB). Holds at most `part_size` + one chunk; what is left
    when a step ends (`tail`) is kept by the caller and given back to the next step's buffer."""

    def __init__(self, upload: Callable[[bytes], None], part_size: int, tail: bytes = b"") -> None:
        self._upload = upload
        self.part_size = part_size
        self._buffer = bytearray(tail)
        self.peak = len(self._buffer)

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.peak = max(self.peak, len(self._buffer))
        while len(self._buffer) >= self.part_size:
            part = bytes(self._buffer[:self.part_size])
            del self._buffer[:self.part_size]
            self._upload(part)

    @property
    def tail(self) -> bytes:
        return bytes(self._buffer)

    def flush_last(self) -> None:
        """The last part, whatever its size (S3 allows the last part to be small)."""
        if self._buffer:
            part = bytes(self._buffer)
            self._buffer.clear()
            self._upload(part)
