"""The `matte serve` page in a real headless Chromium (Debian's chromium and chromium-driver, driven by
selenium): pick a photo, drop another, see both cut-outs, download one and then all as a .zip.

Skips when Chromium, its driver or selenium is missing (CI installs them: apt-get install chromium
chromium-driver). The browser runs offline: only the test server on a loopback port is reachable.

Run as a script to take the README's screenshot with the bundled model and the example photos::

    python tests/test_serve_browser.py docs/serve.png
"""

from __future__ import annotations

import base64
import io
import shutil
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HERE = Path(__file__).resolve().parent


def _missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).is_file():
            return f"{path} not found (apt-get install {package})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium; the test extra has it)"
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        return "the serve extra is not installed"
    return None


def start_browser(profile: Path, downloads: Path):
    """Headless Chromium with a fresh profile, no network services of its own, downloads into a folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={profile}",
        "--window-size=1280,1000",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    return driver


def wait_for(condition, timeout: float = 60.0, what: str = "the page"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def downloaded(folder: Path, name: str, timeout: float = 30.0) -> Path:
    path = folder / name
    wait_for(lambda: path.is_file() and not list(folder.glob("*.crdownload")), timeout, f"download {name}")
    return path


def drop_file(driver, data: bytes, name: str) -> None:
    """What a drag and drop from the desktop delivers: a drop event whose DataTransfer holds a File."""
    driver.execute_script(
        """
        const [b64, name] = arguments;
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, { type: "image/png" }));
        const target = document.querySelector("#drop");
        for (const type of ["dragenter", "dragover", "drop"]) {
          target.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }
        """,
        base64.b64encode(data).decode(),
        name,
    )


def done_cards(driver) -> int:
    return driver.execute_script(
        "return [...document.querySelectorAll('.card.done .cutout')]"
        ".filter((img) => img.complete && img.naturalWidth > 0).length"
    )


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_pick_drop_see_and_download(tmp_path: Path, weights: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    from test_serve import Server, encoded, scene

    from mattecli.inference import Matter

    photo = tmp_path / "scene.png"
    pixels = scene()
    photo.write_bytes(encoded(pixels))
    other = scene(80, 112, seed=5)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    server = Server(tmp_path / "serve.log", "--model", str(weights))
    driver = start_browser(tmp_path / "profile", downloads)
    try:
        driver.get(f"http://127.0.0.1:{server.port}/")
        wait_for(lambda: "model tiny" in driver.find_element(By.ID, "model").text, what="the model line")

        driver.find_element(By.ID, "files").send_keys(str(photo))  # "choose files"
        wait_for(lambda: done_cards(driver) == 1, what="the first cut-out")
        drop_file(driver, encoded(other), "dropped.png")  # drag and drop
        wait_for(lambda: done_cards(driver) == 2, what="the dropped photo's cut-out")
        names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".card .name")]
        assert names == ["scene.png", "dropped.png"]
        sizes = driver.execute_script(
            "return [...document.querySelectorAll('.cutout')].map((i) => [i.naturalWidth, i.naturalHeight])"
        )
        assert sizes == [[128, 96], [112, 80]]
        assert "done" in driver.find_element(By.ID, "notice").text

        # Download one: the RGBA PNG the model makes.
        driver.find_element(By.CSS_SELECTOR, ".card .download").click()
        with Image.open(downloaded(downloads, "scene.matte.png")) as cutout:
            assert cutout.mode == "RGBA" and cutout.size == (128, 96)
            rgba = np.asarray(cutout).astype(int)
        expected = Matter(model=weights, device="cpu").matte(pixels).rgba().astype(int)
        assert np.abs(rgba - expected).max() <= 1

        # Another kind of output redoes every photo; "Download all" packs them into a .zip.
        Select(driver.find_element(By.ID, "output")).select_by_value("composite")
        wait_for(
            lambda: (
                all(e.text == "composite" for e in driver.find_elements(By.CSS_SELECTOR, ".card.done .kind"))
                and done_cards(driver) == 2
            ),
            what="both composites",
        )
        driver.find_element(By.ID, "download-all").click()
        with zipfile.ZipFile(downloaded(downloads, "cutouts.zip")) as archive:
            assert archive.testzip() is None
            assert archive.namelist() == ["scene.composite.png", "dropped.composite.png"]
            with Image.open(io.BytesIO(archive.read("dropped.composite.png"))) as composite:
                assert composite.mode == "RGB" and composite.size == (112, 80)
        driver.save_screenshot(str(tmp_path / "page.png"))
        logs = driver.get_log("browser") if hasattr(driver, "get_log") else []
        assert not [entry for entry in logs if entry.get("level") == "SEVERE"], logs
    finally:
        driver.quit()
        server.stop()


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    import torch
    from conftest import trained_tiny_net

    from mattecli.modelfiles.weights import save_weights

    torch.set_num_threads(1)
    return save_weights(trained_tiny_net(), tmp_path / "tiny.safetensors", {})


def screenshot(target: Path) -> None:
    """The page with the bundled model's cut-outs of the example photos, as the README shows it."""
    import tempfile

    from selenium.webdriver.common.by import By

    sys.path.insert(0, str(HERE))
    from test_serve import Server

    examples = HERE.parent / "examples"
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        server = Server(work / "serve.log", "--model", "default")
        driver = start_browser(work / "profile", work)
        try:
            driver.set_window_size(1280, 760)
            driver.get(f"http://127.0.0.1:{server.port}/")
            for name in ("astronaut.jpg", "grace_hopper.jpg"):
                driver.find_element(By.ID, "files").send_keys(str(examples / name))
            wait_for(lambda: done_cards(driver) == 2, 300, "the cut-outs")
            time.sleep(0.5)
            driver.save_screenshot(str(target))
        finally:
            driver.quit()
            server.stop()
    print(f"wrote {target}")


if __name__ == "__main__":
    screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/serve.png").resolve())
