#!/usr/bin/env python3
"""Renders MNIST test digits as pictures of paper, for nn-infer's picture inputs and MNIST's
preprocessing (Tests/CLITests/PictureInputTests.swift). Writes Fixtures/photos/:

- pictures/img_NNN.{png,jpg}: COUNT digits from ../shared/data/mnist (the real MNIST test set),
  rendered black on white as a photo or scan of paper would show them: canvas 60 to 400
  pixels a side, the digit 30-70 % of the shorter side, off centre with margins, paper and ink
  of varied shades (tinted in RGB pictures), a slight Gaussian blur; PNG and JPEG (quality 80-92),
  gray and RGB, alternating.
- digits.idx, labels.idx: the same digits as 28x28 u8 IDX images and their labels (IDX u8).
- same/: the first SAME digits unchanged, as the other inputs nn-infer reads, for the
  "same predictions as IDX" tests: same.idx, same.csv (Kaggle train.csv: label,pixel0..783),
  same_test.csv (Kaggle test.csv: pixel0..783), same_u8.npy (N,28,28) uint8,
  same_f32.npy (N,784) float32, folder/NN.png (28x28 gray PNG, one per digit).
- kinds/: 3x1 pictures of every pixel kind the readers convert (gray 8/16-bit, gray+alpha, RGB
  8/16-bit, RGBA, palette with transparency; PNG, PGM, PPM plain and raw) and kinds.json, the gray
  value of each pixel computed here from the formulas (Rec. 601 luma 0.299 R + 0.587 G + 0.114 B,
  alpha composited on white: v * a + 255 * (1 - a), 16-bit samples / 257).
- bad/: bomb.png (a valid PNG header declaring 100000x100000), bomb.jpg (a JPEG whose frame
  header declares 65000x65000).

Pillow is needed only here (pip install Pillow). Deterministic: numpy's RandomState(17).
"""
import gzip
import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageFilter

ROOT = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(ROOT, "photos")
MNIST = os.path.join(ROOT, "..", "..", "shared", "data", "mnist")
COUNT = 100
SAME = 20


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def write_idx(path, array):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with open(path, "wb") as f:
        f.write(header + array.tobytes())


def render(digit, rng, rgb):
    """One digit (28x28, white on black) as a picture of paper."""
    width, height = (int(v) for v in rng.randint(60, 401, size=2))
    side = min(width, height)
    box = int(round(side * rng.uniform(0.45, 0.95)))  # the 28x28 field; the digit is 20/28 of it
    ink = Image.fromarray(digit).resize((box, box), Image.BICUBIC)
    ink = np.asarray(ink, dtype=np.float64) / 255.0
    x = int(rng.randint(0, width - box + 1))
    y = int(rng.randint(0, height - box + 1))
    coverage = np.zeros((height, width))
    coverage[y:y + box, x:x + box] = np.clip(ink, 0, 1)
    if rgb:
        paper = np.array([rng.uniform(215, 252), rng.uniform(210, 250), rng.uniform(195, 245)])
        pen = np.array([rng.uniform(0, 60), rng.uniform(0, 60), rng.uniform(20, 110)])
        pixels = paper[None, None, :] * (1 - coverage[..., None]) + pen[None, None, :] * coverage[..., None]
        image = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8), "RGB")
    else:
        paper, pen = rng.uniform(205, 252), rng.uniform(0, 70)
        pixels = paper * (1 - coverage) + pen * coverage
        image = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8), "L")
    return image.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.3, 0.6) * side / 100))


def bomb_png():
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def bomb_jpeg(small):
    data = bytearray(small)
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5:i + 9] = struct.pack(">HH", 65000, 65000)
            return bytes(data)
        i += 2 + length
    raise SystemExit("no SOF marker")


def kinds():
    folder = os.path.join(OUT, "kinds")
    os.makedirs(folder, exist_ok=True)
    expected = {}
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [10, 20, 30]]], dtype=np.uint8)
    luma = lambda c: 0.299 * c[..., 0] + 0.587 * c[..., 1] + 0.114 * c[..., 2]
    gray = np.array([[0, 128, 255]], dtype=np.uint8)
    Image.fromarray(gray, "L").save(os.path.join(folder, "gray8.png"))
    expected["gray8.png"] = gray[0].tolist()
    g16 = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    Image.fromarray(g16.astype(np.int32), "I").convert("I;16").save(os.path.join(folder, "gray16.png"))
    expected["gray16.png"] = (g16[0] / 257.0).tolist()
    Image.fromarray(rgb, "RGB").save(os.path.join(folder, "rgb8.png"))
    expected["rgb8.png"] = luma(rgb.astype(float))[0].tolist()
    alpha = np.array([[255, 0, 51]], dtype=np.uint8)
    Image.fromarray(np.dstack([rgb, alpha[..., None]]), "RGBA").save(os.path.join(folder, "rgba8.png"))
    a = alpha[0] / 255.0
    expected["rgba8.png"] = (luma(rgb.astype(float))[0] * a + 255 * (1 - a)).tolist()
    Image.fromarray(np.dstack([gray, alpha]), "LA").save(os.path.join(folder, "gray_alpha.png"))
    expected["gray_alpha.png"] = (gray[0] * a + 255 * (1 - a)).tolist()
    palette = Image.fromarray(rgb, "RGB").quantize(colors=3)
    palette.info["transparency"] = palette.getpixel((1, 0))  # the green pixel's entry is transparent
    palette.save(os.path.join(folder, "palette.png"), transparency=palette.getpixel((1, 0)))
    expected["palette.png"] = [luma(rgb[0, 0].astype(float)), 255.0, luma(rgb[0, 2].astype(float))]
    # 16-bit RGB through a hand-written PNG (Pillow cannot write it).
    rgb16 = rgb.astype(np.uint32) * 257
    rows = b"".join(b"\x00" + r.astype(">u2").tobytes() for r in rgb16)
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 1, 16, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    open(os.path.join(folder, "rgb16.png"), "wb").write(png)
    expected["rgb16.png"] = luma(rgb.astype(float))[0].tolist()
    open(os.path.join(folder, "plain.pgm"), "w").write("P2\n# a comment\n3 1\n100\n0 50 100\n")
    expected["plain.pgm"] = [0.0, 127.5, 255.0]
    open(os.path.join(folder, "raw.ppm"), "wb").write(b"P6 3 1 255\n" + rgb.tobytes())
    expected["raw.ppm"] = luma(rgb.astype(float))[0].tolist()
    open(os.path.join(folder, "raw16.pgm"), "wb").write(b"P5 3 1 65535\n" + g16.astype(">u2").tobytes())
    expected["raw16.pgm"] = (g16[0] / 257.0).tolist()
    Image.fromarray(gray, "L").save(os.path.join(folder, "gray.jpg"), quality=100)
    expected["gray.jpg"] = gray[0].tolist()  # JPEG is lossy: compared within 3
    import json
    with open(os.path.join(folder, "kinds.json"), "w") as f:
        json.dump({k: [round(float(v), 4) for v in vals] for k, vals in sorted(expected.items())}, f, indent=1)


def main():
    images = read_idx(os.path.join(MNIST, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(MNIST, "t10k-labels-idx1-ubyte.gz"))
    rng = np.random.RandomState(17)
    chosen = np.sort(rng.choice(len(images), COUNT, replace=False))
    digits, truth = images[chosen], labels[chosen]
    for sub in ("pictures", "same/folder", "bad"):
        os.makedirs(os.path.join(OUT, sub), exist_ok=True)
        for name in os.listdir(os.path.join(OUT, sub)):
            if os.path.isfile(os.path.join(OUT, sub, name)):
                os.remove(os.path.join(OUT, sub, name))
    write_idx(os.path.join(OUT, "digits.idx"), digits)
    write_idx(os.path.join(OUT, "labels.idx"), truth)
    for i, digit in enumerate(digits):
        rgb = (i // 2) % 2 == 1
        picture = render(digit, rng, rgb)
        if i % 2 == 0:
            picture.save(os.path.join(OUT, "pictures", "img_%03d.png" % i), optimize=True)
        else:
            picture.save(os.path.join(OUT, "pictures", "img_%03d.jpg" % i), quality=int(rng.randint(80, 93)))

    same, same_labels = digits[:SAME], truth[:SAME]
    write_idx(os.path.join(OUT, "same", "same.idx"), same)
    flat = same.reshape(SAME, 784)
    header = ",".join("pixel%d" % j for j in range(784))
    with open(os.path.join(OUT, "same", "same.csv"), "w") as f:
        f.write("label," + header + "\n")
        for label, row in zip(same_labels, flat):
            f.write("%d," % label + ",".join(str(v) for v in row) + "\n")
    with open(os.path.join(OUT, "same", "same_test.csv"), "w") as f:
        f.write(header + "\n")
        for row in flat:
            f.write(",".join(str(v) for v in row) + "\n")
    np.save(os.path.join(OUT, "same", "same_u8.npy"), same)
    np.save(os.path.join(OUT, "same", "same_f32.npy"), flat.astype(np.float32))
    for i, digit in enumerate(same):
        Image.fromarray(digit, "L").save(os.path.join(OUT, "same", "folder", "%02d.png" % i))
    with open(os.path.join(OUT, "same", "folder", "README.txt"), "w") as f:
        f.write("not a picture: nn-infer skips it with a note\n")

    kinds()
    with open(os.path.join(OUT, "bad", "bomb.png"), "wb") as f:
        f.write(bomb_png())
    with open(os.path.join(OUT, "pictures", "img_001.jpg"), "rb") as f:
        small = f.read()
    with open(os.path.join(OUT, "bad", "bomb.jpg"), "wb") as f:
        f.write(bomb_jpeg(small))


if __name__ == "__main__":
    main()
