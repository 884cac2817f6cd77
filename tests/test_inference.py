"""Decoding uploads (a corpus made here with Pillow), the helpers, and the predictor on real images."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

import qcnn.compat  # noqa: F401
from qcnn import paths
from qcnn.backbone import IMAGE_SIZE, pil_to_uint8, preprocess
from qcnn.cams import SCORECAM_BATCH
from qcnn.inference import (
    CAM_METHODS,
    MAX_BYTES,
    ImageError,
    Predictor,
    bitstring,
    entropy_bits,
    load_image,
    overlay,
    top_states,
)

# --- a corpus of files, made in memory ------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height 8-bit RGB, with (almost) no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A 80 x 60 RGB image with structure (a gradient plus noise)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:60, 0:80]
    array = np.stack([x * 3, y * 4, (x + y) * 2], -1) + rng.integers(0, 30, (60, 80, 3))
    return Image.fromarray(array.clip(0, 255).astype(np.uint8))


def corpus(photo: Image.Image) -> dict[str, bytes]:
    grey16 = Image.fromarray((np.arange(60 * 80).reshape(60, 80) * 13).astype(np.uint16))
    return {
        "JPEG RGB": encode(photo, "JPEG", quality=90),
        "JPEG L": encode(photo.convert("L"), "JPEG"),
        "JPEG CMYK": encode(photo.convert("CMYK"), "JPEG"),
        "PNG RGB": encode(photo, "PNG"),
        "PNG L": encode(photo.convert("L"), "PNG"),
        "PNG LA": encode(photo.convert("LA"), "PNG"),
        "PNG RGBA": encode(photo.convert("RGBA"), "PNG"),
        "PNG P": encode(photo.convert("P"), "PNG"),
        "PNG I;16": encode(grey16, "PNG"),
        "PNG 1": encode(photo.convert("1"), "PNG"),
        "WebP": encode(photo, "WEBP"),
        "BMP": encode(photo, "BMP"),
        "TIFF RGB": encode(photo, "TIFF"),
        "TIFF I": encode(Image.fromarray((np.arange(4800).reshape(60, 80) * 9).astype(np.int32)), "TIFF"),
        "TIFF F": encode(Image.fromarray(np.linspace(0, 1, 4800, dtype=np.float32).reshape(60, 80)), "TIFF"),
        "GIF": encode(photo.convert("P"), "GIF"),
    }


CORPUS_NAMES = [
    "JPEG RGB",
    "JPEG L",
    "JPEG CMYK",
    "PNG RGB",
    "PNG L",
    "PNG LA",
    "PNG RGBA",
    "PNG P",
    "PNG I;16",
    "PNG 1",
    "WebP",
    "BMP",
    "TIFF RGB",
    "TIFF I",
    "TIFF F",
    "GIF",
]


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_load_image_accepts_every_format_and_mode(photo: Image.Image, name: str) -> None:
    data = corpus(photo)[name]
    image = load_image(data)
    assert image.mode == "RGB"
    assert image.size == (80, 60)
    array = np.asarray(image)
    assert array.dtype == np.uint8 and array.shape == (60, 80, 3)
    assert array.std() > 5, "the picture should survive the conversion, not turn flat"


def test_load_image_converts_faithfully(photo: Image.Image) -> None:
    reference = np.asarray(photo, dtype=np.int16)
    for name in ("PNG RGB", "BMP", "TIFF RGB"):  # lossless
        assert np.array_equal(np.asarray(load_image(corpus(photo)[name])), reference), name
    grey = np.asarray(load_image(corpus(photo)["PNG L"]), dtype=np.int16)
    assert np.array_equal(grey[..., 0], grey[..., 2])
    assert np.abs(grey[..., 0] - np.asarray(photo.convert("L"), dtype=np.int16)).max() == 0
    cmyk = np.asarray(load_image(corpus(photo)["JPEG CMYK"]), dtype=np.int16)
    assert np.abs(cmyk - reference).mean() < 12  # lossy, but the same colours


def test_load_image_composites_transparency_on_white() -> None:
    clear = Image.new("RGBA", (40, 40), (255, 0, 0, 0))
    clear.paste((0, 0, 255, 255), (0, 0, 20, 40))  # left half opaque blue, right half transparent red
    result = np.asarray(load_image(encode(clear, "PNG")))
    assert tuple(result[20, 5]) == (0, 0, 255)
    assert tuple(result[20, 35]) == (255, 255, 255)
    half = np.asarray(load_image(encode(Image.new("LA", (40, 40), (0, 128)), "PNG")))
    assert abs(int(half[0, 0, 0]) - 127) <= 1  # black at 50 % over white
    palette = Image.new("P", (40, 40), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.info["transparency"] = 1
    assert tuple(np.asarray(load_image(encode(palette, "GIF", transparency=1)))[0, 0]) == (255, 255, 255)


def test_load_image_rescales_16_bit() -> None:
    ramp = np.zeros((40, 40), dtype=np.uint16)
    ramp[:, 20:] = 65535
    ramp[:, 10:20] = 32896  # 128 * 257
    grey = np.asarray(load_image(encode(Image.fromarray(ramp), "PNG")))[..., 0]
    assert grey[0, 0] == 0 and grey[0, 15] == 128 and grey[0, 30] == 255


def test_load_image_takes_the_first_frame_of_an_animation() -> None:
    frames = [Image.new("RGB", (40, 40), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    red = np.asarray(load_image(data))[5, 5]
    assert red[0] > 200 and red[1] < 50


def test_load_image_reads_camera_mpo_jpegs() -> None:
    """Cameras and phones write JPEGs with extra pictures (MPO): Pillow names the format MPO."""
    frames = [Image.new("RGB", (64, 48), (200, 10, 10)), Image.new("RGB", (64, 48), (10, 200, 10))]
    data = encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    pixel = np.asarray(load_image(data))[5, 5]
    assert pixel[0] > 180 and pixel[1] < 40


def test_load_image_applies_exif_orientation(photo: Image.Image) -> None:
    marked = photo.copy()
    marked.paste((255, 0, 0), (0, 0, 10, 10))  # red top-left corner as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    data = encode(marked, "JPEG", exif=exif.tobytes(), quality=95)
    image = load_image(data)
    assert image.size == (60, 80), "width and height swap"
    corner = np.asarray(image)[:10, -10:].reshape(-1, 3).mean(axis=0)  # now top-right
    assert corner[0] > 200 and corner[1] < 60 and corner[2] < 60


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"Hello, I am a text file that was renamed to photo.jpg.\n" * 20, "not an image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "PDF"),
        (b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg' width='64' height='64'/>", "SVG"),
        (b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 100, "HEIC"),
    ],
)
def test_load_image_rejects_non_images(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        load_image(data)


def test_load_image_rejects_formats_it_does_not_accept(photo: Image.Image) -> None:
    with pytest.raises(ImageError, match="not supported"):
        load_image(encode(photo, "ICO"))
    with pytest.raises(ImageError, match="not an image"):  # Pillow reads TGA, but uploads of it are refused
        load_image(encode(photo, "TGA"))


def test_load_image_rejects_truncated_and_corrupt_files(photo: Image.Image) -> None:
    jpeg = encode(photo.resize((400, 300)), "JPEG")
    with pytest.raises(ImageError, match="truncated"):
        load_image(jpeg[: len(jpeg) // 2])
    png = encode(photo.resize((400, 300)), "PNG")
    with pytest.raises(ImageError, match="truncated|corrupt"):
        load_image(png[: len(png) // 2])
    broken = bytearray(png)
    broken[60:200] = b"\x00" * 140  # inside the compressed pixel data
    with pytest.raises(ImageError, match="corrupt|truncated"):
        load_image(bytes(broken))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # the global the check relies on


@pytest.mark.parametrize("size", [(1, 1), (31, 200), (200, 31)])
def test_load_image_rejects_tiny_images(size: tuple[int, int]) -> None:
    with pytest.raises(ImageError, match="too small"):
        load_image(encode(Image.new("RGB", size), "PNG"))
    load_image(encode(Image.new("RGB", (32, 32)), "PNG"))  # the limit itself is fine


def _no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self, *args, **kwargs):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_load_image_rejects_too_many_pixels_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    big = encode(Image.new("L", (7000, 7000), 0), "PNG")  # 49 megapixels, a few tens of kB
    assert len(big) < 200_000
    _no_decoding(monkeypatch)
    start = time.perf_counter()
    with pytest.raises(ImageError, match="too large.*megapixels"):
        load_image(big)
    assert time.perf_counter() - start < 0.5


def test_load_image_stops_a_decompression_bomb(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_decoding(monkeypatch)
    for width, height in ((10_000, 10_000), (100_000, 100_000)):  # past Pillow's warning and error limits
        start = time.perf_counter()
        with pytest.raises(ImageError, match="too large") as caught:
            load_image(png_header_only(width, height))
        assert time.perf_counter() - start < 0.5
        assert "DOS" not in str(caught.value) and "megapixels" in str(caught.value)  # plain words, not Pillow's


def test_load_image_pillow_bomb_guard_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even with a lower Pillow limit than ours, Pillow's warning and error both become ImageError."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match="too large to decode safely"):
        load_image(encode(Image.new("RGB", (40, 40)), "PNG"))  # 1,600 px: Pillow warns
    with pytest.raises(ImageError, match="too large to decode safely"):
        load_image(encode(Image.new("RGB", (60, 60)), "PNG"))  # 3,600 px: Pillow raises


def test_load_image_from_many_threads(photo: Image.Image) -> None:
    import warnings

    filters = list(warnings.filters)
    files = [*corpus(photo).values(), png_header_only(10_000, 10_000)] * 4

    def decode(data: bytes):
        try:
            return np.asarray(load_image(data))
        except ImageError as err:
            return str(err)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(decode, files))
    for data, result in zip(files, results, strict=True):
        expected = decode(data)
        assert np.array_equal(result, expected) if isinstance(expected, np.ndarray) else result == expected
    assert warnings.filters == filters, "the decompression-bomb filter leaked out of load_image"


def test_load_image_rejects_too_many_bytes() -> None:
    with pytest.raises(ImageError, match="too large.*MB"):
        load_image(b"\xff\xd8\xff" + bytes(MAX_BYTES))


# --- helpers -----------------------------------------------------------------------------------------


def test_bitstring_puts_wire_zero_first() -> None:
    assert bitstring(0) == "00000000"
    assert bitstring(1) == "00000001"  # only the last wire (7) is 1
    assert bitstring(128) == "10000000"  # only wire 0 is 1
    assert bitstring(255) == "11111111"
    assert bitstring(5, n_qubits=3) == "101"
    with pytest.raises(ValueError):
        bitstring(256)


def test_bitstring_matches_the_circuit_convention() -> None:
    """RY(pi) on wire 0 alone (everything else identity) must land on |10000000> = index 128."""
    from qcnn.quantum import _product_state

    angles = torch.zeros(1, 8)
    angles[0, 0] = torch.pi
    state = _product_state(torch.cos(angles / 2), torch.sin(angles / 2))[0]
    assert bitstring(int(state.abs().argmax())) == "10000000"


def test_entropy_and_top_states() -> None:
    uniform = np.full(256, 1 / 256)
    assert entropy_bits(uniform) == pytest.approx(8.0)
    point = np.zeros(256)
    point[3] = 1.0
    assert entropy_bits(point) == pytest.approx(0.0)
    assert np.allclose(entropy_bits(np.stack([uniform, point])), [8.0, 0.0])
    p = np.arange(256, dtype=float)
    p /= p.sum()
    top = top_states(p, 3)
    assert [s.index for s in top] == [255, 254, 253]
    assert top[0].bits == "11111111" and top[0].probability == pytest.approx(p[255])


def test_overlay() -> None:
    image = np.full((224, 224, 3), 100, dtype=np.uint8)
    heat = np.zeros((224, 224), dtype=np.float32)
    heat[:, 112:] = 1.0
    assert np.array_equal(overlay(image, heat, 0.0), image)
    full = overlay(image, heat, 1.0)
    assert tuple(full[0, 0]) == (0, 0, 128) and full[0, 200, 0] > 100  # jet: blue at 0, red at 1
    half = overlay(image, heat, 0.5)
    assert half.dtype == np.uint8 and half.shape == (224, 224, 3)
    assert np.array_equal(half[0, 0], np.round((image[0, 0] + np.array([0, 0, 128])) / 2).astype(np.uint8))
    with pytest.raises(ValueError):
        overlay(image, heat[:100], 0.5)


def test_every_listed_cam_method_has_a_class() -> None:
    from qcnn.cams import CAM_CLASSES

    assert tuple(CAM_CLASSES) == CAM_METHODS
    assert {"GradCAM", "GradCAM++", "HiResCAM", "EigenCAM", "ScoreCAM"} <= set(CAM_METHODS)


# --- the predictor on real images ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    missing = [
        f for f in ("backbone", "qcnn", "classical") if not (paths.CHECKPOINT_DIR / f"{f}.safetensors").is_file()
    ]
    if missing:
        pytest.skip(
            f"trained checkpoints {missing} not in {paths.CHECKPOINT_DIR}: run `qcnn reproduce` (CI has them committed)"
        )
    return Predictor.from_checkpoints(paths.CHECKPOINT_DIR)


@pytest.fixture(scope="module")
def test_images(data_dir) -> list[Image.Image]:
    """Four test-pool images (two malignant, two benign), decoded as uploads are."""
    from qcnn.data import image_path
    from qcnn.split import read_split

    split_file = paths.RESULTS_DIR / paths.SPLIT_FILE
    if not split_file.is_file():
        pytest.skip(f"{split_file} missing: run `qcnn split`")
    pool = read_split(split_file)
    pool = pool[pool["pool"] == "test"]
    ids = [*pool[pool["label"] == 1]["image_id"][:2], *pool[pool["label"] == 0]["image_id"][:2]]
    return [load_image(image_path(data_dir, i).read_bytes()) for i in ids]


def assert_same(a, b, atol: float = 1e-6) -> None:
    for kind in ("qcnn", "classical"):
        x, y = a.output(kind), b.output(kind)
        assert x.probability == pytest.approx(y.probability, abs=atol)
        assert np.allclose(x.heatmap, y.heatmap, atol=1e-5)
        assert np.allclose(x.patch_distributions, y.patch_distributions, atol=atol)
    assert np.array_equal(a.image, b.image)


def test_predict_outputs(predictor: Predictor, test_images: list[Image.Image]) -> None:
    image = test_images[0]
    prediction = predictor.predict(image)
    assert prediction.cam_method == "GradCAM"
    assert prediction.image.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and prediction.image.dtype == np.uint8
    assert np.array_equal(prediction.image, pil_to_uint8(image).permute(1, 2, 0).numpy())
    for kind in ("qcnn", "classical"):
        out = prediction.output(kind)
        assert 0.0 <= out.probability <= 1.0
        with torch.no_grad():  # the same number as the model's own forward on the evaluation transform
            expected = torch.sigmoid(predictor.models[kind](preprocess(image))).item()
        assert out.probability == pytest.approx(expected, abs=1e-5)
        assert out.heatmap.shape == (IMAGE_SIZE, IMAGE_SIZE)
        assert out.heatmap.min() >= 0.0 and out.heatmap.max() <= 1.0
        assert out.patch_distributions.shape == (196, 256)
        assert np.all(out.patch_distributions >= -1e-7)
        assert np.allclose(out.patch_distributions.sum(axis=1), 1.0, atol=1e-4)
        assert out.mean_distribution.shape == (256,)
        assert np.allclose(out.mean_distribution, out.patch_distributions.mean(axis=0))
        assert out.mean_distribution.sum() == pytest.approx(1.0, abs=1e-4)
        assert out.patch_entropy_map().shape == (14, 14) and out.patch_argmax_map().shape == (14, 14)
        with torch.no_grad():  # the distributions are the head's own
            features = predictor.models[kind].layer3(predictor.models[kind].prefix(preprocess(image)))
            head = predictor.models[kind].head.outputs(features).patch_outcomes[0].double().numpy()
        assert np.allclose(out.patch_distributions, head, atol=1e-6)
    assert set(prediction.timings) >= {
        "preprocess",
        "qcnn_forward",
        "qcnn_cam",
        "classical_forward",
        "classical_cam",
        "total",
    }


def test_a_prediction_without_maps_is_the_prediction_with_them(predictor, test_images) -> None:
    """cam_method=None: one plain forward pass per model, the same numbers as the CAM's, and no map."""
    plain = predictor.predict(test_images[3], cam_method=None)
    with_maps = predictor.predict(test_images[3], cam_method="GradCAM")
    assert plain.cam_method is None and np.array_equal(plain.image, with_maps.image)
    for kind in ("qcnn", "classical"):
        x, y = plain.output(kind), with_maps.output(kind)
        assert x.heatmap is None and y.heatmap is not None
        assert x.probability == pytest.approx(y.probability, abs=1e-6)
        assert np.allclose(x.patch_distributions, y.patch_distributions, atol=1e-6)
        assert np.allclose(x.pooled_features, y.pooled_features, atol=1e-5)
    assert plain.ood_distance == pytest.approx(with_maps.ood_distance, rel=1e-5)
    assert not any(name.endswith("_cam") for name in plain.timings) and "qcnn_cam" in with_maps.timings


def test_predictions_never_import_pytorch_grad_cam(predictor) -> None:
    """What a fresh app's first prediction waits for: the models, not pytorch-grad-cam and scikit-learn."""
    code = """
import sys
from PIL import Image
from qcnn import paths
from qcnn.inference import Predictor
predictor = Predictor.from_checkpoints(paths.CHECKPOINT_DIR)
predictor.warm_up()
print("LOADED", sorted(m for m in ("pytorch_grad_cam", "sklearn", "qcnn.cams") if m in sys.modules))
predictor.warm_up(cam_method="GradCAM")
print("THEN", sorted(m for m in ("pytorch_grad_cam", "qcnn.cams") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=paths.REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "LOADED []" in out.stdout and "THEN ['pytorch_grad_cam', 'qcnn.cams']" in out.stdout


def test_predict_is_deterministic_and_leaves_the_models_alone(predictor, test_images) -> None:
    first, second = (predictor.predict(test_images[1]) for _ in range(2))
    assert_same(first, second, atol=0.0)
    for model in predictor.models.values():
        assert all(p.grad is None and not p.requires_grad for p in model.parameters())
        assert not model.layer3._forward_hooks and not model._forward_hooks, "CAM hooks left on the shared model"
        assert not model.training


@pytest.mark.parametrize("method", [m for m in CAM_METHODS if m != "ScoreCAM"])
def test_every_cam_method(predictor: Predictor, test_images: list[Image.Image], method: str) -> None:
    prediction = predictor.predict(test_images[2], cam_method=method)
    reference = predictor.predict(test_images[2], cam_method="GradCAM")
    for kind in ("qcnn", "classical"):
        out = prediction.output(kind)
        assert out.heatmap.shape == (IMAGE_SIZE, IMAGE_SIZE)
        assert np.isfinite(out.heatmap).all() and 0.0 <= out.heatmap.min() <= out.heatmap.max() <= 1.0
        # the method changes the map, never the prediction
        assert out.probability == pytest.approx(reference.output(kind).probability, abs=1e-6)
        assert np.allclose(out.patch_distributions, reference.output(kind).patch_distributions, atol=1e-6)


def test_scorecam(predictor: Predictor, test_images: list[Image.Image]) -> None:
    reports: list[tuple[float, str]] = []
    prediction = predictor.predict(test_images[0], cam_method="ScoreCAM", progress=lambda f, t: reports.append((f, t)))
    reference = predictor.predict(test_images[0])
    for kind in ("qcnn", "classical"):
        out = prediction.output(kind)
        assert out.heatmap.shape == (IMAGE_SIZE, IMAGE_SIZE) and out.heatmap.max() <= 1.0
        assert out.probability == pytest.approx(reference.output(kind).probability, abs=1e-6)
    # the progress follows ScoreCAM's batches of masked images, model after model, up to 1.0
    fractions = [f for f, _ in reports]
    batches = 256 // SCORECAM_BATCH
    assert len(reports) == 2 * (batches + 1) and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert fractions[0] == pytest.approx(1 / (2 * batches)) and fractions[batches - 1] == pytest.approx(0.5)
    assert "QCNN" in reports[0][1] and f"{SCORECAM_BATCH} of 256 masked images" in reports[0][1]
    assert "classical" in reports[-2][1] and "256 of 256" in reports[-2][1]
    # other methods report each model's end only
    reports.clear()
    predictor.predict(test_images[0], progress=lambda f, t: reports.append((f, t)))
    assert [f for f, _ in reports] == [0.5, 1.0]


def test_unusual_images_are_flagged(predictor: Predictor, test_images: list[Image.Image]) -> None:
    """Noise and a flat grey square are unlike dermoscopy; real test-pool images typically are not."""
    if predictor.ood is None:
        pytest.skip(f"no out-of-distribution reference: {predictor.ood_note}")
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8))
    grey = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (128, 128, 128))
    for image in (noise, grey):
        prediction = predictor.predict(image)
        assert prediction.unusual and prediction.ood_distance > prediction.ood_threshold
    real = [predictor.predict(image) for image in test_images]
    assert sum(p.unusual for p in real) <= 1, [p.ood_distance for p in real]
    assert all(p.ood_threshold == predictor.ood.threshold for p in real)


def test_without_a_reference_there_is_no_check(predictor: Predictor, test_images: list[Image.Image]) -> None:
    bare = Predictor(predictor.models["qcnn"], predictor.models["classical"], ood_note="not computed here")
    prediction = bare.predict(test_images[0])
    assert prediction.ood_distance is None and not prediction.unusual and bare.ood_note == "not computed here"
    assert prediction.qcnn.pooled_features.shape == (256,)


def test_predict_rejects_bad_arguments(predictor: Predictor, test_images: list[Image.Image]) -> None:
    with pytest.raises(ValueError, match="cam_method"):
        predictor.predict(test_images[0], cam_method="NoSuchCAM")
    with pytest.raises(TypeError):
        predictor.predict(np.zeros((224, 224, 3), dtype=np.uint8))


def test_concurrent_predictions_match_sequential(predictor: Predictor, test_images: list[Image.Image]) -> None:
    """Several users at once on the same cached models get exactly what they would get alone."""
    from threadpoolctl import threadpool_info

    blas_threads = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    jobs = [(i, method) for method in ("GradCAM", "HiResCAM", "EigenCAM") for i in range(len(test_images))]
    sequential = {job: predictor.predict(test_images[job[0]], cam_method=job[1]) for job in jobs}
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [(job, pool.submit(predictor.predict, test_images[job[0]], job[1])) for job in jobs * 2]
        concurrent = [(job, future.result(timeout=300)) for job, future in futures]
    for job, result in concurrent:
        assert_same(sequential[job], result)
    # different images really differ, so a mix-up between threads would have been caught
    assert not np.allclose(sequential[jobs[0]].qcnn.heatmap, sequential[jobs[1]].qcnn.heatmap)
    for model in predictor.models.values():
        assert not model.layer3._forward_hooks
    # EigenCAM's one-BLAS-thread limit is process-wide: it must be restored, whatever the interleaving
    assert [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"] == blas_threads


def test_committed_test_predictions_are_what_the_app_computes(data_dir) -> None:
    """Evaluation scores in float32 through the same forward pass as Try it: equal to 1e-5."""
    import pandas as pd

    from qcnn.data import image_path, load_image_file
    from qcnn.inference import Predictor

    predictor = Predictor.from_checkpoints(paths.CHECKPOINT_DIR)
    tables = {
        k: pd.read_csv(paths.RESULTS_DIR / "runs" / f"{k}_seed0" / "predictions.csv", dtype={"image_id": str})
        for k in ("qcnn", "classical")
    }
    sample = tables["qcnn"].sample(6, random_state=0)
    for image_id in sample.image_id:
        prediction = predictor.predict(load_image_file(image_path(data_dir, image_id)))
        for kind, table in tables.items():
            committed = float(table.loc[table.image_id == image_id, "probability"].iloc[0])
            assert abs(prediction.output(kind).probability - committed) < 1e-5, (kind, image_id)
