"""Safe decoding of an uploaded image: bytes in, an RGB ``PIL.Image`` out, or an ``ImageError`` whose
message a person can act on (too large, a decompression bomb, a PDF, an HEIC photo, ...).

No torch here: the app decodes uploads in its own process, while the models run in theirs.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from qcnn.constants import MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS, MIN_UPLOAD_SIDE, UPLOAD_EXTENSIONS

MAX_BYTES, MAX_PIXELS, MIN_SIDE = MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS, MIN_UPLOAD_SIDE
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
ACCEPTED_EXTENSIONS = UPLOAD_EXTENSIONS
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_ACCEPTED_TEXT = "JPEG, PNG, WebP, BMP, TIFF or GIF"
# warnings.catch_warnings swaps a process-wide filter list: two threads interleaving it could leave
# the other's filter behind, so decoding holds this lock (a typical upload decodes in milliseconds).
_DECODE_LOCK = threading.Lock()

# Signatures of formats people upload by mistake, to name them in the message.
_KNOWN_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF", "a PDF document"),
    (0, b"%!PS", "a PostScript/EPS file"),
    (0, b"8BPS", "a Photoshop (PSD) file"),
    (0, b"\x00\x00\x01\x00", "an icon (ICO) file"),
    (0, b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (0, b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (0, b"\xff\x4f\xff\x51", "a JPEG 2000 codestream"),
    (128, b"DICM", "a DICOM file"),
)
_FTYP_BRANDS = {
    b"heic": "a HEIC image",
    b"heix": "a HEIC image",
    b"mif1": "a HEIF image",
    b"msf1": "a HEIF image",
    b"avif": "an AVIF image",
    b"avis": "an AVIF image",
}


class ImageError(ValueError):
    """An upload that cannot be used as an image; the message is meant for the person uploading."""


def _sniff_unsupported(data: bytes) -> str | None:
    """What a file Pillow was not allowed to (or could not) open looks like, if recognisable."""
    for offset, magic, name in _KNOWN_SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return name
    if data[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(data[8:12], "an ISO media file (HEIC/AVIF/MP4)")
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:4096].lower()):
        return "an SVG drawing"
    return None


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is composited on white, deep greys are rescaled."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        has_alpha = "transparency" in image.info or (image.palette is not None and image.palette.mode == "RGBA")
        image = image.convert("RGBA" if has_alpha else "RGB")
        mode = image.mode
    elif mode in ("L", "RGB") and "transparency" in image.info:  # a PNG tRNS colour key
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        return Image.fromarray(_deep_grey_to_uint8(image), mode="L").convert("RGB")
    return image.convert("RGB")  # 1, L, CMYK, YCbCr, LAB, HSV


def _deep_grey_to_uint8(image: Image.Image) -> np.ndarray:
    """16-bit, 32-bit integer or float greys to 0..255: by bit depth where it is clear, else min-max."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        scaled = values / 257.0
    else:
        finite = values[np.isfinite(values)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        if image.mode == "F" and lo >= 0.0 and hi <= 1.0:
            scaled = values * 255.0
        elif lo >= 0.0 and hi <= 255.0:
            scaled = values
        elif lo >= 0.0 and hi <= 65535.0:
            scaled = values / 257.0
        else:
            scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
    return np.nan_to_num(scaled, nan=0.0).clip(0, 255).round().astype(np.uint8)


def load_image(data: bytes) -> Image.Image:
    """Decode an uploaded file to an RGB image, or raise ``ImageError`` saying why not.

    Accepts JPEG, PNG, WebP, BMP, TIFF and GIF (first frame); applies the EXIF orientation;
    converts every mode to RGB. The size limits are checked on the header, before any pixel is
    decoded, so a decompression bomb costs nothing.
    """
    if data is None or len(data) == 0:
        raise ImageError("The file is empty (0 bytes). Choose an image file.")
    if len(data) > MAX_BYTES:
        raise ImageError(
            f"The file is too large ({len(data) / 1e6:.1f} MB); the limit is "
            f"{MAX_BYTES / 1e6:.0f} MB. Save it as a JPEG or resize it, then upload it again."
        )
    try:
        with _DECODE_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
            width, height = image.size  # from the header: nothing decoded yet
            if width * height > MAX_PIXELS:
                raise ImageError(
                    f"The image is too large ({width} x {height} = {width * height / 1e6:.0f} "
                    f"megapixels); the limit is {MAX_PIXELS / 1e6:.0f} megapixels."
                )
            if min(width, height) < MIN_SIDE:
                raise ImageError(
                    f"The image is too small ({width} x {height} pixels); each side needs at least {MIN_SIDE} pixels."
                )
            image.load()  # a freshly opened file is on its first frame (GIF, MPO) or page (TIFF)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # Pillow refuses before our own header check can run; its message talks of "DOS attacks".
        raise ImageError(
            f"The image is too large to decode safely: it has more pixels than the limit of "
            f"{MAX_PIXELS / 1e6:.0f} megapixels. Resize it (for example to 1,000 pixels a side) "
            "and upload it again."
        ) from err
    except UnidentifiedImageError as err:
        what = _sniff_unsupported(data)
        if what:
            raise ImageError(
                f"This looks like {what}, which is not supported. Upload a {_ACCEPTED_TEXT} image."
            ) from err
        raise ImageError(f"This file is not an image this app can read. Upload a {_ACCEPTED_TEXT} image.") from err
    except MemoryError as err:
        raise ImageError("The image is too large to decode.") from err
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        struct.error,
        IndexError,
        TypeError,
        KeyError,
        ZeroDivisionError,
    ) as err:
        if "truncated" in str(err).lower():
            raise ImageError(
                "The image file is truncated (incomplete): it may not have finished "
                "uploading or saving. Try the file again."
            ) from err
        raise ImageError(f"The image file is corrupt and cannot be decoded ({err}).") from err

    try:
        oriented = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - a malformed EXIF block should not lose the image
        oriented = image
    try:
        rgb = _to_rgb(oriented if oriented is not None else image)
    except (OSError, ValueError) as err:
        raise ImageError(f"The image's colour mode ({image.mode}) cannot be converted to RGB ({err}).") from err
    rgb.load()
    if rgb is image:  # detach from the file object and its format plugin
        rgb = rgb.copy()
    return rgb
