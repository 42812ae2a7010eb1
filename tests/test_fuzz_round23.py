"""classify's image loading reads an image as viewers show it (fuzz round 23).

The references are closed forms computed here from the pixels written (numpy only):
ink on a transparent background reads over white, the EXIF orientation is applied,
and a 16-bit PGM reads as value / 65535, like a 16-bit PNG.
"""
import numpy as np
import pytest

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from nnumba.commands.classify import load_image  # noqa: E402


def _ink_alpha(h=28, w=28):
    alpha = np.zeros((h, w), np.uint8)
    alpha[6:22, 12:16] = 255          # an opaque stroke
    alpha[6:22, 16:18] = 128          # a half-transparent edge (anti-aliasing)
    return alpha


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
@pytest.mark.parametrize("channels", [1, 3])
def test_ink_on_a_transparent_background_reads_over_white(tmp_path, mode, channels):
    """Black ink on a transparent background (what drawing apps export; the transparent
    pixels' colour is 0) reads as viewers show it, composited over white:
    1 - alpha / 255, not an all-black plane that gets a blank image's classes."""
    alpha = _ink_alpha()
    zeros = np.zeros_like(alpha)
    path = tmp_path / f"ink_{mode}.png"
    if mode == "P":  # a palette of black only: index 0 transparent, index 1 opaque (the ink)
        img = Image.fromarray((alpha == 255).astype(np.uint8), "L").convert("P")
        img.putpalette([0, 0, 0] * 256)
        img.save(path, transparency=0)
        expected = (alpha != 255).astype(np.float64)
    else:
        Image.fromarray(np.dstack([zeros] * (3 if mode == "RGBA" else 1) + [alpha]), mode) \
            .save(path)
        expected = 1.0 - alpha / 255.0
    x = load_image(str(path), channels, (28, 28))
    assert x.shape == (1, channels, 28, 28)
    for plane in x[0]:
        np.testing.assert_allclose(plane, expected, atol=1.5 / 255)


def test_exif_orientation_is_applied(tmp_path):
    """A photo whose EXIF orientation says 'rotate 90 degrees clockwise to display'
    (tag 0x0112 = 6, what phones write for portrait photos) reads upright, as viewers
    show it (np.rot90(stored, -1)), not sideways and squashed into the displayed shape."""
    stored = (np.random.default_rng(0).random((20, 40)) * 255).astype(np.uint8)
    img = Image.fromarray(stored)  # stored 40 wide, 20 tall
    exif = img.getexif()
    exif[0x0112] = 6
    path = tmp_path / "portrait.png"  # lossless, so the comparison is exact
    img.save(path, exif=exif)
    displayed = np.rot90(stored, -1)  # 20 wide, 40 tall on screen
    x = load_image(str(path), 1, displayed.shape)
    np.testing.assert_allclose(x[0, 0], displayed / 255.0, atol=1e-6)


@pytest.mark.parametrize("maxval", [65535, 1000])
def test_16bit_pgm_reads_as_a_16bit_png_does(tmp_path, maxval):
    """A 16-bit grey PGM (Pillow's mode "I", already scaled to 0..65535 from the file's
    maxval) reads as value / maxval, as the same pixels in a 16-bit PNG read as
    value / 65535: a faint stroke stays faint instead of being stretched to white."""
    a = np.zeros((28, 28), np.uint16)
    a[5:20, 10:14] = maxval // 10
    a[20:22, 10:14] = maxval // 2
    pgm = tmp_path / "faint.pgm"
    pgm.write_bytes(b"P5\n28 28\n%d\n" % maxval + a.astype(">u2").tobytes())
    expected = a / maxval
    np.testing.assert_allclose(load_image(str(pgm), 1, (28, 28))[0, 0], expected, atol=1e-4)
    if maxval == 65535:
        png = tmp_path / "faint.png"
        Image.fromarray(a).save(png)
        np.testing.assert_allclose(load_image(str(png), 1, (28, 28))[0, 0], expected,
                                   atol=1e-6)
