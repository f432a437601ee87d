"""CI: prove that the installed wheel holds the whole package and that its commands run.

Run with the virtual environment's Python from the repository root, after the wheel is installed (not
editable). It fails when a module of the source tree is missing from the installed package, when the package
is imported from the source tree instead of site-packages, or when ``matte image`` / ``matte video`` fail on
tiny inputs made here.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "mattecli"


def source_modules() -> list[str]:
    """Dotted names of every module in the source tree (packages as their ``__init__``)."""
    names = []
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def check_modules() -> None:
    import mattecli

    installed = Path(mattecli.__file__).resolve().parent
    if installed == SOURCE:
        sys.exit(f"mattecli is imported from the source tree ({installed}), not from the installed wheel")
    missing = [name for name in source_modules() if importlib.util.find_spec(name) is None]
    if missing:
        sys.exit(f"modules missing from the installed package: {', '.join(missing)}")
    bundled = importlib.util.find_spec("mattecli.bundled")
    weights = Path(bundled.origin).parent / "lite.safetensors" if bundled else None
    if weights is None or not weights.is_file():
        sys.exit("the bundled weights (mattecli/bundled/lite.safetensors) are missing from the wheel")
    print(f"ok: {len(source_modules())} modules and the bundled weights are installed in {installed}")


def run(*args: str, cwd: Path) -> None:
    print("$", " ".join(args), flush=True)
    subprocess.run(args, cwd=cwd, check=True)


def smoke_commands() -> None:
    """``matte image`` and ``matte video`` from the installed console script, on tiny inputs."""
    import imageio_ffmpeg
    import numpy as np
    from PIL import Image

    matte = str(Path(sys.executable).parent / "matte")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        rng = np.random.default_rng(0)
        picture = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
        Image.fromarray(picture).save(work / "tiny.jpg")
        run(matte, "image", "tiny.jpg", "-o", "tiny.png", "--quiet", cwd=work)
        with Image.open(work / "tiny.png") as written:
            assert written.mode == "RGBA" and written.size == (128, 96), (written.mode, written.size)
        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        clip = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=0.5", "-pix_fmt", "yuv420p"]
        run(ffmpeg, "-loglevel", "error", *clip, "clip.mp4", cwd=work)
        run(matte, "video", "clip.mp4", "-o", "clip.webm", "--quiet", cwd=work)
        assert (work / "clip.webm").stat().st_size > 0
        print("ok: matte image and matte video ran from the installed package")


if __name__ == "__main__":
    os.chdir(tempfile.gettempdir())  # so that the source tree is not on sys.path
    check_modules()
    smoke_commands()
