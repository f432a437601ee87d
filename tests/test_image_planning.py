"""Planning a `matte image` run (issue 14): which files are inputs, where results go, what is refused.

These tests need no model: planning only looks at names and files, so every refusal is checked to
happen before any model is loaded or any folder is created.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mattecli.errors import MatteError
from mattecli.photo.backgrounds import prepare_background
from mattecli.photo.outputs import OutputOptions, check_output_options, is_own_output
from mattecli.photo.planning import STDOUT, plan_jobs


def _image(path: Path, size: tuple[int, int] = (8, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 120, np.uint8)).save(path)
    return path


def _names(jobs) -> list[tuple[str, str]]:
    return [(job.source.name, job.target.name) for job in jobs]


# -- item 1: our own outputs are never inputs when a folder or glob is expanded ----------------------


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("a.matte.png", True),
        ("a.composite.jpg", True),
        ("a.alpha.tif", True),
        ("a.ALPHA.PNG", True),
        ("a-jpg.matte.png", True),
        ("a.matte.preview.jpg", True),
        ("a.composite.preview.jpg", True),
        ("a.png", False),
        ("matte.png", False),
        ("a.matte.txt", False),
        ("a.preview.jpg", False),
        ("alpha.jpg", False),
    ],
)
def test_own_output_names(name: str, ours: bool) -> None:
    assert is_own_output(Path(name)) is ours


def test_folder_expansion_leaves_out_earlier_outputs_and_previews(tmp_path: Path) -> None:
    shots = tmp_path / "s"
    for name in ("a.jpg", "a.matte.png", "a.matte.matte.png", "a.matte.preview.jpg", "b.composite.jpg"):
        _image(shots / name)
    jobs = plan_jobs([str(shots)], None, OutputOptions())
    assert _names(jobs) == [("a.jpg", "a.matte.png")]


def test_glob_expansion_leaves_out_earlier_outputs(tmp_path: Path) -> None:
    for name in ("a.png", "a.matte.png", "a.alpha.png"):
        _image(tmp_path / name)
    jobs = plan_jobs([str(tmp_path / "*.png")], None, OutputOptions(alpha_only=True))
    assert _names(jobs) == [("a.png", "a.alpha.png")]


def test_an_output_named_explicitly_is_still_an_input(tmp_path: Path) -> None:
    source = _image(tmp_path / "a.matte.png")
    jobs = plan_jobs([str(source)], None, OutputOptions())
    assert _names(jobs) == [("a.matte.png", "a.matte.matte.png")]


def test_a_folder_of_outputs_only_says_so(tmp_path: Path) -> None:
    _image(tmp_path / "s" / "a.matte.png")
    with pytest.raises(MatteError, match=r"only outputs of matte image .*name a file"):
        plan_jobs([str(tmp_path / "s")], None, OutputOptions())


def test_colliding_names_keep_the_tag_last(tmp_path: Path) -> None:
    """x.jpg and x.png both become x.matte.png: the source format goes before the tag, so the names
    still read as our outputs on the next run."""
    _image(tmp_path / "x.jpg")
    _image(tmp_path / "x.png")
    jobs = plan_jobs([str(tmp_path)], None, OutputOptions())
    assert _names(jobs) == [("x.jpg", "x-jpg.matte.png"), ("x.png", "x-png.matte.png")]
    assert all(is_own_output(job.target) for job in jobs)


# -- item 2: an output is never an input ------------------------------------------------------------


def test_output_that_is_the_input_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    source = _image(tmp_path / "same.jpg")
    options = OutputOptions(background="white", overwrite=True)
    with pytest.raises(MatteError, match="would replace an input"):
        plan_jobs([str(source)], tmp_path / "." / "same.jpg", options)


def test_output_that_is_a_hard_link_or_symlink_to_the_input_is_refused(tmp_path: Path) -> None:
    source = _image(tmp_path / "same.png")
    os.link(source, tmp_path / "linked.png")
    (tmp_path / "symlinked.png").symlink_to(source)
    options = OutputOptions(overwrite=True)
    for name in ("linked.png", "symlinked.png"):
        with pytest.raises(MatteError, match="would replace an input"):
            plan_jobs([str(source)], tmp_path / name, options)


def test_an_explicit_input_that_another_input_would_write_is_refused(tmp_path: Path) -> None:
    a = _image(tmp_path / "a.jpg")
    earlier = _image(tmp_path / "a.matte.png")
    with pytest.raises(MatteError, match="would replace an input"):
        plan_jobs([str(a), str(earlier)], None, OutputOptions(overwrite=True))


def test_preview_that_would_replace_an_input_is_refused(tmp_path: Path) -> None:
    source = _image(tmp_path / "cut.preview.jpg")
    with pytest.raises(MatteError, match="would replace an input"):
        plan_jobs([str(source)], tmp_path / "cut.png", OutputOptions(preview=True, overwrite=True))


# -- item 3: -o is a file or a folder by its name, and says what is wrong ---------------------------


def test_a_file_name_for_several_images_is_refused(tmp_path: Path) -> None:
    one, two = _image(tmp_path / "one.jpg"), _image(tmp_path / "2.jpg")
    with pytest.raises(MatteError) as caught:
        plan_jobs([str(one), str(two)], "two.png", OutputOptions())
    assert str(caught.value).startswith("-o two.png names one file but 2 images were given; give a folder")
    assert not (tmp_path / "two.png").exists()


def test_a_file_name_for_a_folder_of_several_images_is_refused(tmp_path: Path) -> None:
    _image(tmp_path / "s" / "a.jpg")
    _image(tmp_path / "s" / "b.jpg")
    with pytest.raises(MatteError, match="names one file but 2 images were given"):
        plan_jobs([str(tmp_path / "s")], tmp_path / "out.png", OutputOptions())


@pytest.mark.parametrize("spelling", ["cut/", "cut.v2/", "cut"])
def test_trailing_slash_or_no_suffix_means_a_folder(tmp_path: Path, spelling: str) -> None:
    source = _image(tmp_path / "a.jpg")
    jobs = plan_jobs([str(source)], f"{tmp_path}/{spelling}", OutputOptions())
    assert [job.target for job in jobs] == [tmp_path / spelling.rstrip("/") / "a.png"]


def test_an_existing_folder_with_a_suffix_is_a_folder(tmp_path: Path) -> None:
    source = _image(tmp_path / "a.jpg")
    (tmp_path / "out.png").mkdir()
    jobs = plan_jobs([str(source)], str(tmp_path / "out.png"), OutputOptions())
    assert [job.target for job in jobs] == [tmp_path / "out.png" / "a.png"]


def test_dash_means_stdout_for_one_image(tmp_path: Path) -> None:
    source = _image(tmp_path / "a.jpg")
    jobs = plan_jobs([str(source)], "-", OutputOptions())
    assert [job.target for job in jobs] == [STDOUT]
    assert not (tmp_path / "-").exists() and not Path("-").exists()


def test_dash_for_several_images_is_refused(tmp_path: Path) -> None:
    a, b = _image(tmp_path / "a.jpg"), _image(tmp_path / "b.jpg")
    with pytest.raises(MatteError, match="-o - writes one image to stdout but 2 images were given"):
        plan_jobs([str(a), str(b)], "-", OutputOptions())


def test_preview_to_stdout_is_refused(tmp_path: Path) -> None:
    source = _image(tmp_path / "a.jpg")
    with pytest.raises(MatteError, match="--preview needs a file"):
        plan_jobs([str(source)], "-", OutputOptions(preview=True))


def test_dash_with_other_inputs_is_refused(tmp_path: Path) -> None:
    source = _image(tmp_path / "a.jpg")
    with pytest.raises(MatteError, match=r"stdin.*only input"):
        plan_jobs(["-", str(source)], tmp_path / "out", OutputOptions())


# -- item 4: an output folder may hold the inputs ---------------------------------------------------


def test_output_folder_that_holds_the_input(tmp_path: Path) -> None:
    source = _image(tmp_path / "astronaut.jpg")
    jobs = plan_jobs([str(source)], str(tmp_path), OutputOptions())
    assert [job.target for job in jobs] == [tmp_path / "astronaut.matte.png"]


def test_output_folder_above_the_input_folder(tmp_path: Path) -> None:
    shots = tmp_path / "shots"
    _image(shots / "sub" / "x.jpg")
    _image(shots / "y.jpg")
    jobs = plan_jobs([str(shots / "sub")], str(shots) + "/", OutputOptions())
    assert [job.target for job in jobs] == [shots / "x.matte.png"]
    # The same folder in and out is a run next to the inputs, and a rerun finds only the inputs.
    _image(shots / "x.matte.png")
    jobs = plan_jobs([str(shots)], shots, OutputOptions())
    assert [(job.source, job.target) for job in jobs] == [
        (shots / "sub" / "x.jpg", shots / "sub" / "x.matte.png"),
        (shots / "y.jpg", shots / "y.matte.png"),
    ]


def test_results_written_into_a_folder_inside_the_inputs_are_not_inputs_next_time(tmp_path: Path) -> None:
    shots = tmp_path / "shots"
    _image(shots / "a.jpg")
    _image(shots / "cut" / "a.png")  # what the first run wrote
    _image(shots / "cut" / "a.preview.jpg")
    jobs = plan_jobs([str(shots)], shots / "cut", OutputOptions())
    assert [(job.source, job.target) for job in jobs] == [(shots / "a.jpg", shots / "cut" / "a.png")]


def test_a_folder_matted_into_itself_mattes_every_input_under_the_tagged_name(tmp_path: Path) -> None:
    """Issue 24: `matte image shots/ -o shots/` planned nothing for PNG inputs (their untagged output name
    is the input's own name), nor for JPEG inputs with `--bg white --format jpg`; globs neither."""
    shots = tmp_path / "shots"
    _image(shots / "a.png")
    _image(shots / "sub" / "b.png")
    _image(shots / "c.jpg")
    expected = [
        (shots / "a.png", shots / "a.matte.png"),
        (shots / "c.jpg", shots / "c.matte.png"),
        (shots / "sub" / "b.png", shots / "sub" / "b.matte.png"),
    ]
    for output in (str(shots), str(shots) + "/"):
        jobs = plan_jobs([str(shots)], output, OutputOptions())
        assert [(job.source, job.target) for job in jobs] == expected
    jobs = plan_jobs([str(shots / "*.png")], str(shots), OutputOptions())
    assert [(job.source, job.target) for job in jobs] == [(shots / "a.png", shots / "a.matte.png")]
    composite = OutputOptions(background="white", extension="jpg")
    jobs = plan_jobs([str(shots / "*.jpg")], str(shots) + "/", composite)
    assert [(job.source, job.target) for job in jobs] == [(shots / "c.jpg", shots / "c.composite.jpg")]
    alpha = OutputOptions(alpha_only=True)
    jobs = plan_jobs([str(shots)], str(shots), alpha)
    assert [job.target.name for job in jobs] == ["a.alpha.png", "c.alpha.png", "b.alpha.png"]


# -- items 5 and 15: options and backgrounds are checked up front; refusals say what fits -----------


def test_unknown_format_is_refused() -> None:
    with pytest.raises(MatteError, match=r"unknown --format gif.*png.*jpg"):
        check_output_options(OutputOptions(background="white", extension="gif"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (OutputOptions(extension="jpg"), r"JPEG has no alpha channel.*\.png.*--bg.*--alpha-only"),
        (OutputOptions(extension="bmp"), r"BMP has no alpha channel"),
        (OutputOptions(alpha_only=True, depth=16, extension="jpg"), r"16-bit matte needs \.png or \.tif"),
    ],
)
def test_format_refusals_say_what_fits(options: OutputOptions, message: str) -> None:
    with pytest.raises(MatteError, match=message):
        check_output_options(options)


@pytest.mark.parametrize(
    "options",
    [
        OutputOptions(alpha_only=True, extension="jpg"),
        OutputOptions(alpha_only=True, extension=".bmp"),
        OutputOptions(alpha_only=True, depth=16, extension="tif"),
        OutputOptions(background="white", extension="JPG"),
        OutputOptions(extension="webp"),
    ],
)
def test_formats_that_fit(options: OutputOptions) -> None:
    check_output_options(options)


def test_an_eight_bit_matte_may_be_a_jpeg_file(tmp_path: Path) -> None:
    source = _image(tmp_path / "a.jpg")
    jobs = plan_jobs([str(source)], tmp_path / "m.jpg", OutputOptions(alpha_only=True))
    assert [job.target for job in jobs] == [tmp_path / "m.jpg"]
    with pytest.raises(MatteError, match=r"m.jpg: JPEG has no alpha channel.*add --bg"):
        plan_jobs([str(source)], tmp_path / "m.jpg", OutputOptions())


def test_format_that_disagrees_with_the_output_file_is_refused(tmp_path: Path) -> None:
    source = _image(tmp_path / "a.jpg")
    with pytest.raises(MatteError, match=r"--format webp.*out.png"):
        plan_jobs([str(source)], tmp_path / "out.png", OutputOptions(extension="webp"))
    jobs = plan_jobs([str(source)], tmp_path / "out.jpeg", OutputOptions(background="white", extension="jpg"))
    assert [job.target.name for job in jobs] == ["out.jpeg"]


def test_background_colour_and_image_are_prepared_once(tmp_path: Path) -> None:
    assert np.allclose(prepare_background("white").fill(3, 4), 1.0)
    backdrop_file = tmp_path / "bg.png"
    Image.fromarray(np.full((10, 20, 3), (0, 0, 255), np.uint8)).save(backdrop_file)
    backdrop = prepare_background(str(backdrop_file))
    backdrop_file.unlink()  # decoded already: compositing never reads the file again
    filled = backdrop.fill(6, 6)
    assert filled.shape == (6, 6, 3) and np.allclose(filled[..., 2], 1.0) and np.allclose(filled[..., 0], 0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: str(d / "missing.jpg"), r"missing.jpg: no such file \(--bg\)"),
        (lambda d: "notacolour", r"notacolour: --bg is not a colour or an image file"),
        (lambda d: "transparent", r"background must be opaque"),
        (lambda d: str(d), r"--bg.*is a folder"),
    ],
)
def test_bad_backgrounds_are_one_line_errors(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(MatteError, match=message):
        prepare_background(make(tmp_path))


def test_truncated_background_image_is_found_up_front(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(good.read_bytes()[:400])
    with pytest.raises(MatteError, match=r"bad.jpg: .*\(--bg\)"):
        prepare_background(str(bad))


# -- items 8 and 12: existing outputs ---------------------------------------------------------------


def test_one_named_file_with_an_existing_output_is_an_error(tmp_path: Path) -> None:
    source = _image(tmp_path / "in.jpg")
    (tmp_path / "existing.png").write_bytes(b"keep")
    with pytest.raises(MatteError, match=r"existing.png: exists \(use --overwrite\)"):
        plan_jobs([str(source)], tmp_path / "existing.png", OutputOptions())
    jobs = plan_jobs([str(source)], tmp_path / "existing.png", OutputOptions(overwrite=True))
    assert [job.target for job in jobs] == [tmp_path / "existing.png"]


def test_one_named_file_with_an_existing_preview_is_an_error(tmp_path: Path) -> None:
    source = _image(tmp_path / "in.jpg")
    (tmp_path / "in.matte.preview.jpg").write_bytes(b"keep")
    with pytest.raises(MatteError, match=r"in.matte.preview.jpg: exists \(use --overwrite\)"):
        plan_jobs([str(source)], None, OutputOptions(preview=True))
    plan_jobs([str(source)], None, OutputOptions())  # without --preview it is not ours to worry about


def test_batches_plan_existing_outputs_for_skipping(tmp_path: Path) -> None:
    _image(tmp_path / "s" / "a.jpg")
    _image(tmp_path / "s" / "b.jpg")
    (tmp_path / "s" / "a.matte.png").write_bytes(b"keep")
    jobs = plan_jobs([str(tmp_path / "s")], None, OutputOptions())
    assert _names(jobs) == [("a.jpg", "a.matte.png"), ("b.jpg", "b.matte.png")]
    assert not any(job.strict for job in jobs)


def test_inputs_of_one_name_from_two_folders_may_not_share_an_output(tmp_path: Path) -> None:
    """a/x.png and b/x.png into one folder: the second was skipped as 'exists' (or replaced the first
    with --overwrite); refused before anything is written, naming both inputs."""
    first = _image(tmp_path / "a" / "x.png")
    second = _image(tmp_path / "b" / "x.png")
    out = tmp_path / "out"
    for inputs in ([str(first), str(second)], [str(first.parent), str(second.parent)]):
        for overwrite in (False, True):
            with pytest.raises(MatteError, match=r"a/x\.png and .*b/x\.png would both be written here"):
                plan_jobs(inputs, f"{out}/", OutputOptions(overwrite=overwrite))
    assert not out.exists()


def test_an_output_below_a_file_is_refused_while_planning(tmp_path: Path) -> None:
    """-o photo.jpg/out.png was found only when writing, after the model had loaded and run."""
    source = _image(tmp_path / "a.png")
    photo = _image(tmp_path / "photo.jpg")
    for output in (photo / "out.png", f"{photo}/cut/"):
        with pytest.raises(
            MatteError, match=r"photo\.jpg: is a file, not a folder: cannot write .*(out|a)\.png inside it"
        ):
            plan_jobs([str(source)], output, OutputOptions())
