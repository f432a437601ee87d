"""`matte image` end to end through the CLI, with a tiny fitted model and images made here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_scene
from PIL import Image
from typer.testing import CliRunner

from mattecli.cli.app import app

runner = CliRunner()


def _write_scene(path: Path, height: int = 60, width: int = 80, mode: str = "RGB", **save) -> np.ndarray:
    image, _ = synthetic_scene(height, width)
    pixels = (image * 255 + 0.5).astype(np.uint8)
    picture = Image.fromarray(pixels)
    if mode == "L":
        picture = picture.convert("L")
    elif mode == "RGBA":
        picture = picture.convert("RGBA")
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, **save)
    return pixels


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _run(*args: str):
    result = runner.invoke(app, ["image", *args])
    return result


def _rgba(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "RGBA"
        return np.asarray(im)


def test_rgba_png_default_output(tmp_path: Path, trained_weights: Path) -> None:
    src = tmp_path / "in.jpg"
    pixels = _write_scene(src)
    result = _run(str(src), "--model", str(trained_weights), "-q")
    assert result.exit_code == 0, result.output
    out = tmp_path / "in.matte.png"
    rgba = _rgba(out)
    assert rgba.shape == (60, 80, 4)
    # The fitted model finds the red rectangle: opaque inside, transparent in the corners.
    assert rgba[30, 40, 3] > 200 and rgba[2, 2, 3] < 60
    # Opaque pixels keep the input colour (decontamination leaves them alone, JPEG decode aside).
    assert np.abs(rgba[30, 40, :3].astype(int) - pixels[30, 40].astype(int)).max() <= 12


@pytest.mark.parametrize(
    ("name", "mode", "save"),
    [
        ("a.png", "RGB", {}),
        ("gray.png", "L", {}),
        ("with_alpha.png", "RGBA", {}),
        ("a.webp", "RGB", {"lossless": True}),
        ("a.tif", "RGB", {}),
        ("a.bmp", "RGB", {}),
    ],
)
def test_input_formats(tmp_path: Path, trained_weights: Path, name: str, mode: str, save: dict) -> None:
    src = tmp_path / name
    _write_scene(src, mode=mode, **save)
    out = tmp_path / "out.png"
    result = _run(str(src), "-o", str(out), "--model", str(trained_weights), "-q")
    assert result.exit_code == 0, result.output
    assert _rgba(out).shape == (60, 80, 4)


def test_sixteen_bit_png_input_and_sixteen_bit_matte(tmp_path: Path, trained_weights: Path) -> None:
    import cv2

    image, _ = synthetic_scene(60, 80)
    cv2.imwrite(str(tmp_path / "deep.png"), (image[..., ::-1] * 65535).astype(np.uint16))
    out = tmp_path / "deep.alpha.png"
    result = _run(
        str(tmp_path / "deep.png"),
        "-o",
        str(out),
        "--alpha-only",
        "--depth",
        "16",
        "--model",
        str(trained_weights),
    )
    assert result.exit_code == 0, result.output
    matte = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert matte.dtype == np.uint16 and matte.shape == (60, 80)
    assert matte[30, 40] > 50000 and matte[2, 2] < 15000


def test_alpha_only_8_bit_matches_rgba_alpha(tmp_path: Path, trained_weights: Path) -> None:
    src = tmp_path / "in.png"
    _write_scene(src)
    assert (
        _run(
            str(src), "-o", str(tmp_path / "a.png"), "--alpha-only", "--model", str(trained_weights)
        ).exit_code
        == 0
    )
    assert _run(str(src), "-o", str(tmp_path / "c.png"), "--model", str(trained_weights)).exit_code == 0
    with Image.open(tmp_path / "a.png") as im:
        assert im.mode == "L"
        matte = np.asarray(im)
    np.testing.assert_array_equal(matte, _rgba(tmp_path / "c.png")[..., 3])


def test_composite_over_colour_and_image(tmp_path: Path, trained_weights: Path) -> None:
    src = tmp_path / "in.png"
    _write_scene(src)
    result = _run(
        str(src), "-o", str(tmp_path / "white.jpg"), "--bg", "white", "--model", str(trained_weights)
    )
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "white.jpg") as im:
        assert im.mode == "RGB" and im.format == "JPEG"
        pixels = np.asarray(im).astype(int)
    assert pixels[2, 2].min() > 200, "transparent corner shows the white background"
    assert pixels[30, 40, 0] > 180 and pixels[30, 40, 1] < 120, "the subject stays red"
    bg = tmp_path / "bg.png"
    Image.fromarray(np.full((10, 10, 3), (0, 0, 255), np.uint8)).save(bg)
    assert (
        _run(
            str(src), "-o", str(tmp_path / "blue.png"), "--bg", str(bg), "--model", str(trained_weights)
        ).exit_code
        == 0
    )
    with Image.open(tmp_path / "blue.png") as im:
        corner = np.asarray(im)[2, 2].astype(int)
    assert corner[2] > 150 and corner[0] < 100


def test_preview_sheet_is_written_beside_the_output(tmp_path: Path, trained_weights: Path) -> None:
    src = tmp_path / "in.png"
    _write_scene(src)
    assert (
        _run(
            str(src), "-o", str(tmp_path / "cut.png"), "--preview", "--model", str(trained_weights)
        ).exit_code
        == 0
    )
    with Image.open(tmp_path / "cut.preview.jpg") as im:
        assert im.size == (3 * 80, 60)


def test_exif_orientation_is_applied(tmp_path: Path, trained_weights: Path) -> None:
    src = tmp_path / "rotated.jpg"
    image, _ = synthetic_scene(60, 80)
    picture = Image.fromarray((image * 255).astype(np.uint8))
    exif = picture.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    picture.save(src, exif=exif)
    result = _run(str(src), "-o", str(tmp_path / "out.png"), "--model", str(trained_weights))
    assert result.exit_code == 0, result.output
    assert _rgba(tmp_path / "out.png").shape == (80, 60, 4)


def test_folder_recursion_mirrors_subfolders_and_skips_existing(
    tmp_path: Path, trained_weights: Path
) -> None:
    shots = tmp_path / "shots"
    for rel in ("a.jpg", "sub/b.png", "sub/deeper/c.webp"):
        _write_scene(shots / rel)
    (shots / "notes.txt").write_text("not an image")
    out = tmp_path / "cut"
    result = _run(str(shots), "-o", str(out), "--model", str(trained_weights))
    assert result.exit_code == 0, result.output
    produced = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert produced == ["a.png", "sub/b.png", "sub/deeper/c.png"]
    assert "done 3, skipped 0, failed 0" in result.output
    stamp = (out / "a.png").stat().st_mtime_ns
    again = _run(str(shots), "-o", str(out), "--model", str(trained_weights))
    assert "done 0, skipped 3 (exist; --overwrite replaces them), failed 0" in again.output
    assert (out / "a.png").stat().st_mtime_ns == stamp
    forced = _run(str(shots), "-o", str(out), "--model", str(trained_weights), "--overwrite")
    assert "done 3, skipped 0, failed 0" in forced.output


def test_glob_input_and_colliding_names(tmp_path: Path, trained_weights: Path) -> None:
    _write_scene(tmp_path / "in" / "x.jpg")
    _write_scene(tmp_path / "in" / "x.png")
    result = _run(str(tmp_path / "in" / "x.*"), "-o", str(tmp_path / "out"), "--model", str(trained_weights))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x-jpg.png", "x-png.png"]


def test_a_bad_file_in_a_batch_is_reported_and_the_rest_finish(tmp_path: Path, trained_weights: Path) -> None:
    shots = tmp_path / "shots"
    _write_scene(shots / "good.jpg")
    (shots / "broken.jpg").write_bytes((tmp_path / "shots" / "good.jpg").read_bytes()[:300])
    (shots / "empty.png").write_bytes(b"")
    result = _run(str(shots), "-o", str(tmp_path / "cut"), "--model", str(trained_weights))
    assert result.exit_code == 1
    assert "done 1, skipped 0, failed 2" in result.output
    assert "broken.jpg" in result.output and "empty.png" in result.output
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == ["good.png"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.jpg", "missing.jpg"),
        (lambda d: _file(d / "text.jpg", b"hello"), "text.jpg"),
        (lambda d: _file(d / "zero.png", b""), "zero.png"),
    ],
)
def test_bad_single_inputs_fail_with_one_line_and_no_output(
    tmp_path: Path, trained_weights: Path, make, message
) -> None:
    src = make(tmp_path)
    out = tmp_path / "out.png"
    result = _run(str(src), "-o", str(out), "--model", str(trained_weights))
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_truncated_jpeg_leaves_nothing_behind(tmp_path: Path, trained_weights: Path) -> None:
    good = tmp_path / "good.jpg"
    _write_scene(good, 120, 160)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    result = _run(str(bad), "-o", str(tmp_path / "out" / "bad.png"), "--model", str(trained_weights))
    assert result.exit_code == 1 and "bad.jpg" in result.output
    assert not any((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_unwritable_destination(tmp_path: Path, trained_weights: Path) -> None:
    src = tmp_path / "in.png"
    _write_scene(src)
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    result = _run(str(src), "-o", str(blocker / "out.png"), "--model", str(trained_weights))
    assert result.exit_code == 1
    assert "file" in result.output and "Traceback" not in result.output


def test_jpeg_output_without_background_is_refused(tmp_path: Path, trained_weights: Path) -> None:
    src = tmp_path / "in.png"
    _write_scene(src)
    result = _run(str(src), "-o", str(tmp_path / "out.jpg"), "--model", str(trained_weights))
    assert result.exit_code == 1 and "no alpha channel" in result.output


def test_unknown_colour_and_model(tmp_path: Path, trained_weights: Path) -> None:
    src = tmp_path / "in.png"
    _write_scene(src)
    result = _run(str(src), "--bg", "notacolour", "--model", str(trained_weights))
    assert result.exit_code == 1 and "notacolour" in result.output
    result = _run(str(src), "--model", "no-such-model")
    assert result.exit_code == 1 and "unknown model" in result.output


def test_real_process_exit_code_and_single_line_error(tmp_path: Path) -> None:
    """Through the installed entry point: a missing input is one line on stderr, exit 1, no traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "mattecli", "image", str(tmp_path / "nope.jpg")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "nope.jpg" in lines[0] and lines[0].startswith("error:")


def test_help_and_version_are_fast_and_do_not_import_torch() -> None:
    code = "import sys; from mattecli.cli.app import app; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"
    proc = subprocess.run([sys.executable, "-m", "mattecli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("matte ")


def test_tta_option_writes_the_averaged_matte(tmp_path: Path, trained_weights: Path) -> None:
    from mattecli.inference import Matter

    src = tmp_path / "in.png"
    _write_scene(src, 44, 70)
    out = tmp_path / "matte.png"
    result = _run(str(src), "-o", str(out), "--model", str(trained_weights), "--tta", "--alpha-only")
    assert result.exit_code == 0, result.output
    assert "mirrored TTA" in result.output
    with Image.open(out) as im:
        written = np.asarray(im) / 255.0
    rgb = np.asarray(Image.open(src), np.float32) / 255
    expected = Matter(str(trained_weights), device="cpu", tta=True).predict_alpha(rgb)
    plain = Matter(str(trained_weights), device="cpu").predict_alpha(rgb)
    assert np.abs(written - expected).max() <= 0.5 / 255 + 1e-6
    assert np.abs(written - plain).max() > 2 / 255, "--tta must change the matte"


# -- issue 14 ------------------------------------------------------------------------------------------


def _tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_rerunning_on_a_folder_does_not_matte_its_own_outputs(tmp_path: Path, tiny_weights: Path) -> None:
    """Item 1: three runs on s/ give one output and one preview per photo, not a.matte.matte.png."""
    shots = tmp_path / "s"
    _write_scene(shots / "a.jpg")
    _write_scene(shots / "sub" / "b.png")
    for _ in range(3):
        result = _run(str(shots), "--preview", "--model", str(tiny_weights))
        assert result.exit_code == 0, result.output
    assert _tree(shots) == [
        "a.jpg",
        "a.matte.png",
        "a.matte.preview.jpg",
        "sub/b.matte.png",
        "sub/b.matte.preview.jpg",
        "sub/b.png",
    ]
    assert "done 0, skipped 2 (exist; --overwrite replaces them), failed 0" in result.output
    composite = _run(str(shots), "--bg", "white", "--model", str(tiny_weights), "-q")
    assert composite.exit_code == 0, composite.output
    assert "a.composite.png" in _tree(shots) and "a.matte.composite.png" not in _tree(shots)


def test_output_replacing_the_input_is_refused(tmp_path: Path, tiny_weights: Path) -> None:
    """Item 2: `-o same.jpg --overwrite` must not replace the photo."""
    src = tmp_path / "same.jpg"
    _write_scene(src)
    before = src.read_bytes()
    result = _run(str(src), "-o", str(src), "--bg", "white", "--overwrite", "--model", str(tiny_weights))
    assert result.exit_code == 1
    assert "would replace an input" in result.output
    assert src.read_bytes() == before


def test_file_output_for_several_images_is_refused_without_creating_anything(
    tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 3: `-o two.png` with two inputs, and `-o -` with two inputs."""
    monkeypatch.chdir(tmp_path)
    _write_scene(tmp_path / "a.jpg")
    _write_scene(tmp_path / "b.jpg")
    result = _run("a.jpg", "b.jpg", "-o", "two.png", "--model", str(tiny_weights))
    assert result.exit_code == 1
    assert "error: -o two.png names one file but 2 images were given; give a folder" in result.output
    result = _run("a.jpg", "b.jpg", "-o", "-", "--model", str(tiny_weights))
    assert result.exit_code == 1
    assert "-o - writes one image to stdout but 2 images were given" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "b.jpg", "tiny.safetensors"]


def test_trailing_slash_makes_a_folder_for_one_input(tmp_path: Path, tiny_weights: Path) -> None:
    src = tmp_path / "a.jpg"
    _write_scene(src)
    result = _run(str(src), "-o", str(tmp_path / "out.v2") + "/", "--model", str(tiny_weights), "-q")
    assert result.exit_code == 0, result.output
    assert _rgba(tmp_path / "out.v2" / "a.png").shape == (60, 80, 4)


def test_output_folder_that_holds_the_inputs(
    tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 4: `matte image astronaut.jpg -o .` and `matte image shots/sub -o shots/`."""
    monkeypatch.chdir(tmp_path)
    _write_scene(tmp_path / "astronaut.jpg")
    result = _run("astronaut.jpg", "-o", ".", "--model", str(tiny_weights), "-q")
    assert result.exit_code == 0, result.output
    assert _rgba(tmp_path / "astronaut.matte.png").shape == (60, 80, 4)
    _write_scene(tmp_path / "shots" / "sub" / "x.jpg")
    for _ in range(2):
        result = _run("shots/sub", "-o", "shots/", "--model", str(tiny_weights))
        assert result.exit_code == 0, result.output
    assert _tree(tmp_path / "shots") == ["sub/x.jpg", "x.matte.png"]
    assert "done 0, skipped 1" in result.output


def test_a_folder_matted_into_itself(
    tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24: the README's `matte image shots/ -o shots/` on PNG inputs said `done 0` and wrote nothing."""
    monkeypatch.chdir(tmp_path)
    _write_scene(tmp_path / "shots" / "a.png")
    _write_scene(tmp_path / "shots" / "b.jpg")
    result = _run("shots/", "-o", "shots/", "--model", str(tiny_weights))
    assert result.exit_code == 0, result.output
    assert "done 2, skipped 0" in result.output
    assert _tree(tmp_path / "shots") == ["a.matte.png", "a.png", "b.jpg", "b.matte.png"]
    assert _rgba(tmp_path / "shots" / "a.matte.png").shape == (60, 80, 4)
    result = _run("shots/", "-o", "shots/", "--model", str(tiny_weights))
    assert result.exit_code == 0, result.output
    assert "done 0, skipped 2" in result.output


def _no_model_loaded(result) -> None:
    """The runs below pass --model no-such-model: an error about it would mean the model was loaded."""
    assert "unknown model" not in result.output


def test_missing_background_file_is_found_before_the_model(tmp_path: Path) -> None:
    """Item 5: `--bg missing.jpg` says the file is missing, and says it first."""
    src = tmp_path / "in.jpg"
    _write_scene(src)
    result = _run(
        str(src),
        "-o",
        str(tmp_path / "out" / "x.jpg"),
        "--bg",
        str(tmp_path / "missing.jpg"),
        "-m",
        "no-such-model",
    )
    assert result.exit_code == 1
    assert "missing.jpg: no such file (--bg)" in result.output
    _no_model_loaded(result)
    assert not (tmp_path / "out").exists()


def test_truncated_background_image_fails_once_up_front_and_leaves_no_folders(tmp_path: Path) -> None:
    shots = tmp_path / "shots"
    _write_scene(shots / "a.jpg")
    _write_scene(shots / "sub" / "b.jpg")
    good = tmp_path / "bg.jpg"
    _write_scene(good, 120, 160)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(good.read_bytes()[:500])
    result = _run(str(shots), "-o", str(tmp_path / "out"), "--bg", str(bad), "-m", "no-such-model")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "bad.jpg" in lines[0], result.output
    _no_model_loaded(result)
    assert not (tmp_path / "out").exists()


def test_transparent_background_image_is_refused_up_front(tmp_path: Path) -> None:
    """A --bg PNG with transparent pixels used to composite over the colours hidden under them."""
    src = tmp_path / "in.jpg"
    _write_scene(src)
    backdrop = np.zeros((20, 40, 4), np.uint8)
    backdrop[..., :3] = (200, 30, 30)  # hidden colour under the transparent half
    backdrop[:, :20, 3] = 255
    Image.fromarray(backdrop).save(tmp_path / "bg.png")
    out = tmp_path / "out" / "x.jpg"
    result = _run(str(src), "-o", str(out), "--bg", str(tmp_path / "bg.png"), "-m", "no-such-model")
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"error: {tmp_path / 'bg.png'}: the background image has transparent pixels (50 % of it); a "
        "background must be opaque: flatten it onto a colour first (--bg)"
    ]
    _no_model_loaded(result)
    assert not out.parent.exists()


def test_opaque_alpha_channel_background_is_fine(tmp_path: Path, tiny_weights: Path) -> None:
    src = tmp_path / "in.jpg"
    _write_scene(src)
    backdrop = np.zeros((20, 40, 4), np.uint8)
    backdrop[..., :3] = (10, 200, 30)
    backdrop[..., 3] = 255  # an alpha channel, every pixel opaque
    Image.fromarray(backdrop).save(tmp_path / "bg.png")
    result = _run(
        str(src), "-o", str(tmp_path / "x.png"), "--bg", str(tmp_path / "bg.png"), "-m", str(tiny_weights)
    )
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "x.png") as im:
        assert im.mode == "RGB"


def test_unwritable_format_is_refused_before_the_model(tmp_path: Path) -> None:
    shots = tmp_path / "shots"
    _write_scene(shots / "a.jpg")
    result = _run(
        str(shots), "-o", str(tmp_path / "out"), "--format", "gif", "--bg", "white", "-m", "no-such-model"
    )
    assert result.exit_code == 2 and "unknown --format gif" in result.output
    _no_model_loaded(result)
    assert not (tmp_path / "out").exists()


def test_existing_preview_is_not_replaced_without_overwrite(tmp_path: Path, tiny_weights: Path) -> None:
    """Item 8: --preview follows the same rule as the main output."""
    src = tmp_path / "in.jpg"
    _write_scene(src)
    preview = tmp_path / "in.matte.preview.jpg"
    preview.write_bytes(b"mine")
    result = _run(str(src), "--preview", "--model", str(tiny_weights))
    assert result.exit_code == 1
    assert "in.matte.preview.jpg: exists (use --overwrite)" in result.output
    assert preview.read_bytes() == b"mine" and not (tmp_path / "in.matte.png").exists()
    result = _run(str(src), "--preview", "--overwrite", "--model", str(tiny_weights))
    assert result.exit_code == 0, result.output
    with Image.open(preview) as im:
        assert im.size == (3 * 80, 60)


def test_one_named_file_whose_output_exists_is_an_error(tmp_path: Path, tiny_weights: Path) -> None:
    """Item 12: a script must be able to tell; exit 1 like `matte video`."""
    src = tmp_path / "in.jpg"
    _write_scene(src)
    existing = tmp_path / "existing.png"
    existing.write_bytes(b"keep")
    result = _run(str(src), "-o", str(existing), "-m", "no-such-model")
    assert result.exit_code == 1
    assert f"error: {existing}: exists (use --overwrite)" in result.output
    _no_model_loaded(result)
    assert existing.read_bytes() == b"keep"


def test_batch_summary_says_why_files_were_skipped(tmp_path: Path, tiny_weights: Path) -> None:
    shots = tmp_path / "shots"
    _write_scene(shots / "a.jpg")
    _write_scene(shots / "b.jpg")
    (shots / "a.matte.png").write_bytes(b"keep")
    result = _run(str(shots), "--model", str(tiny_weights))
    assert result.exit_code == 0, result.output
    assert "done 1, skipped 1 (exist; --overwrite replaces them), failed 0" in result.output
    assert (shots / "a.matte.png").read_bytes() == b"keep"


def test_eight_bit_matte_as_jpeg(tmp_path: Path, tiny_weights: Path) -> None:
    """Item 15: a grayscale matte fits a JPEG; a 16-bit one does not, and the refusal says what fits."""
    src = tmp_path / "a.jpg"
    _write_scene(src)
    result = _run(str(src), "--alpha-only", "-o", str(tmp_path / "m.jpg"), "--model", str(tiny_weights))
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "m.jpg") as im:
        assert im.format == "JPEG" and im.mode == "L" and im.size == (80, 60)
    result = _run(str(src), "--alpha-only", "--depth", "16", "-o", str(tmp_path / "m16.jpg"), "-m", "x")
    assert result.exit_code == 1 and "16-bit matte needs .png or .tif" in result.output
    result = _run(str(src), "-o", str(tmp_path / "cut.jpg"), "-m", "x")
    assert result.exit_code == 1
    assert "JPEG has no alpha channel" in result.output and "--alpha-only" in result.output
