"""Regenerate the damaged files beside this script (python tests/data/make_corrupt.py).

Each is a small, once-good file broken the way real files get broken; they are
committed so the tests read exactly these bytes."""
import gzip
import json
import zipfile
from pathlib import Path

import numpy as np

import nnumba

HERE = Path(__file__).resolve().parent


def main():
    good = nnumba.save(nnumba.build([{"type": "Linear", "in_features": 3, "out_features": 2}],
                                    seed=0), HERE / "good.npz")
    data = good.read_bytes()
    (HERE / "truncated.npz").write_bytes(data[: len(data) // 2])
    (HERE / "not-a-zip.npz").write_bytes(b"these bytes were never a zip archive\n")
    # One byte of the first member's data flipped: the archive reads, its CRC fails.
    with zipfile.ZipFile(good) as z:
        info = z.infolist()[0]
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    broken = bytearray(data)
    broken[start + info.compress_size - 1] ^= 0xFF
    (HERE / "bad-crc.npz").write_bytes(bytes(broken))
    with np.load(good) as npz:
        arrays = {k: npz[k] for k in npz.files}
    spec = arrays.pop("__nnumba_spec__")
    np.savez(HERE / "spec-not-json.npz", **arrays, __nnumba_spec__=np.array("{'spec': [}"))
    np.savez(HERE / "no-spec.npz", **arrays)
    meta = json.loads(str(spec))
    del meta["spec"]
    np.savez(HERE / "spec-without-spec.npz", **arrays, __nnumba_spec__=np.array(json.dumps(meta)))
    nan = {k: np.full_like(v, np.nan) for k, v in arrays.items()}
    np.savez(HERE / "nan-weights.npz", **nan, __nnumba_spec__=spec)
    # IDX: a header declaring 255 dimensions of size 1, and one data byte.
    (HERE / "255-dims.idx").write_bytes(bytes([0, 0, 0x08, 255]) + b"\0\0\0\1" * 255 + b"\7")
    # IDX gzip bomb: the header says 4 bytes, 64 MiB of zeros follow (64 KiB compressed).
    bomb = bytes([0, 0, 0x08, 1]) + (4).to_bytes(4, "big") + bytes(4 + (64 << 20))
    (HERE / "bomb.idx.gz").write_bytes(gzip.compress(bomb, mtime=0))
    # JSON nested 100,000 deep, as a spec and as a labels file.
    (HERE / "deep.json").write_text("[" * 100_000 + "]" * 100_000)


if __name__ == "__main__":
    main()
