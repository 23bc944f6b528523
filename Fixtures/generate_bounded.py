"""Files that declare far more data than they hold, to check that importers do the cheap
checks (names, shapes, budget) before reading any tensor data (Fixtures/README.md, "bounded").

- `missing_b2_3gb.h5`: blog rows file, W1 (28000, 28000) f32 = 3.1 GB of zeros, gzip-chunked
  (about 4 MB on disk), b1, W2, but no b2.
- `missing_b1_4gb.npz`: np.savez_compressed-style archive whose W1.npy declares 2^30 f32 zeros
  (4 GiB, about 4 MB deflated) and no b1.
- `huge_declared.h5`: W1 declared (100000, 100000) f32 with no chunk written (a few KB), b1,
  W2, b2: only the byte budget stops it.

Run: python3 Fixtures/generate_bounded.py   (h5py and numpy; about a minute)
"""
import os
import struct
import zipfile
import zlib

import h5py
import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bounded")
os.makedirs(HERE, exist_ok=True)


def missing_b2():
    path = os.path.join(HERE, "missing_b2_3gb.h5")
    n = 28000
    with h5py.File(path + ".tmp", "w") as f:
        d = f.create_dataset("W1", shape=(n, n), dtype="f4", chunks=(1000, n), compression="gzip", compression_opts=9)
        zeros = np.zeros((1000, n), dtype="f4")
        for i in range(0, n, 1000):
            d[i:i + 1000] = zeros
        f["b1"] = np.zeros((1, n), dtype="f4")
        f["W2"] = np.zeros((n, 10), dtype="f4")
    os.replace(path + ".tmp", path)


def missing_b1():
    path = os.path.join(HERE, "missing_b1_4gb.npz")
    count = 1 << 30
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }" % count
    pad = 64 - (10 + len(header) + 1) % 64
    header_bytes = header.encode() + b" " * pad + b"\n"
    prefix = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header_bytes)) + header_bytes
    # Deflate the member in pieces: 4 GiB of zeros never exist in memory at once.
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    crc = zlib.crc32(prefix)
    chunks = [compressor.compress(prefix)]
    block = bytes(1 << 24)
    for _ in range((count * 4) // len(block)):
        crc = zlib.crc32(block, crc)
        chunks.append(compressor.compress(block))
    chunks.append(compressor.flush())
    data = b"".join(chunks)
    size = len(prefix) + count * 4
    info = zipfile.ZipInfo("W1.npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    # Written by hand: zipfile would deflate the data itself. ZIP64 sizes (the member is > 4 GiB).
    name = b"W1.npy"
    extra = struct.pack("<HHQQ", 1, 16, size, len(data))
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 8, 0, 0x21, crc & 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra)) + name + extra
    cextra = struct.pack("<HHQQQ", 1, 24, size, len(data), 0)
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 8, 0, 0x21, crc & 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF,
                          len(name), len(cextra), 0, 0, 0, 0, 0xFFFFFFFF) + name + cextra
    cd_offset = len(local) + len(data)
    zip64_end = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, 1, 1, len(central), cd_offset)
    locator = struct.pack("<IIQI", 0x07064B50, 0, cd_offset + len(central), 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), 0xFFFFFFFF, 0)
    with open(path + ".tmp", "wb") as f:
        f.write(local + data + central + zip64_end + locator + end)
    os.replace(path + ".tmp", path)
    # np.load must see the same declaration (it reads the header lazily too).
    with np.load(path) as z:
        assert z.files == ["W1"]


def huge_declared():
    path = os.path.join(HERE, "huge_declared.h5")
    with h5py.File(path + ".tmp", "w") as f:
        f.create_dataset("W1", shape=(100000, 100000), dtype="f4", chunks=(1000, 1000))
        f["b1"] = np.zeros((1, 100000), dtype="f4")
        f.create_dataset("W2", shape=(100000, 10), dtype="f4", chunks=(1000, 10))
        f["b2"] = np.zeros((1, 10), dtype="f4")
    os.replace(path + ".tmp", path)


huge_declared()
missing_b2()
missing_b1()
print("bounded fixtures:", ", ".join(f"{n} {os.path.getsize(os.path.join(HERE, n))} bytes" for n in sorted(os.listdir(HERE))))
