"""Reading and checking one ``POST /v1/matte`` request of ``matte serve``: its options, its body, its image.

Everything here answers the question "can this request be served at all?" before the model is involved,
and refuses with :class:`ApiError` (an HTTP status that says whose fault it is, and a one-line reason):
unknown or contradictory options (400), a body that is neither a form nor an image (415), an upload over the
size limit, declared or streamed (413), an image of a format we do not read (415) or with more pixels than
the server takes (413, from its header, before it is decoded), and a file that does not decode (400).
"""

from __future__ import annotations

from starlette.responses import JSONResponse

from mattecli.errors import MatteError
from mattecli.image.formats import PILLOW_FORMATS, SUPPORTED_TEXT
from mattecli.serve.render import RenderOptions, parse_options

MB = 1024 * 1024
"""Upload limits are given and reported in MiB."""


class ApiError(Exception):
    """A request that cannot be answered with an image: the status and the one-line reason."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(" ".join(message.split()))
        self.status = status
        self.headers = headers

    def response(self) -> JSONResponse:
        return error_response(self.status, str(self), self.headers)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Every error the server sends: JSON ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def request_options(pairs: list[tuple[str, str]]) -> RenderOptions:
    """The request's output options from query or form fields; a bad one is a 400."""
    try:
        return parse_options(pairs)
    except MatteError as error:
        raise ApiError(400, str(error)) from None


def body_kind(content_type: str | None) -> str:
    """'form' for multipart uploads, 'raw' for an image as the body; 415 for anything else."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        return "form"
    if not media or media == "application/octet-stream" or media.startswith("image/"):
        return "raw"
    raise ApiError(
        415,
        f"Content-Type {media} is not accepted: send multipart/form-data with the file in the field "
        "'image', or the image itself as the body (image/* or application/octet-stream)",
    )


def check_declared_length(header: str | None, limit: int) -> None:
    if header is None:
        return
    try:
        length = int(header)
    except ValueError:
        raise ApiError(400, f"bad Content-Length {header!r}") from None
    if length > limit:
        raise ApiError(413, too_large(limit))


def too_large(limit: int) -> str:
    return f"the upload is larger than this server's limit of {limit / MB:g} MB"


def upload_name(filename: str | None) -> str:
    """The uploaded file's own name (no folders, printable, short) for messages and download names."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(character for character in name if character.isprintable())[:100].strip()
    return name or "upload"


def image_size(data: bytes, name: str, max_pixels: int) -> tuple[int, int] | None:
    """(width, height) from the image header, after checking its format and size; None when the header is
    damaged (decoding then says precisely what is wrong)."""
    from PIL import Image, UnidentifiedImageError

    from mattecli.image.decoding import open_picture

    if not data:
        raise ApiError(400, f"{name}: the upload is empty")
    try:
        with open_picture(data) as picture:
            image_format, size = picture.format, picture.size
    except UnidentifiedImageError:
        raise ApiError(400, f"{name}: not an image (send {SUPPORTED_TEXT})") from None
    except Image.DecompressionBombError:
        raise ApiError(413, f"{name}: the image has too many pixels for this server") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        return None
    if image_format not in PILLOW_FORMATS:
        raise ApiError(415, f"{name}: {image_format} images are not supported (send {SUPPORTED_TEXT})")
    if size[0] * size[1] > max_pixels:
        width, height = size
        raise ApiError(
            413,
            f"{name}: the image is {width} x {height} = {width * height / 1e6:.1f} MP; "
            f"this server takes at most {max_pixels / 1e6:g} MP",
        )
    return size


def decode_upload(data: bytes, name: str, max_pixels: int):
    """Check format and size from the header, then decode as ``matte image`` does (one-line errors)."""
    from mattecli.image.decoding import decode_image

    image_size(data, name, max_pixels)
    try:
        return decode_image(data, name)
    except MatteError as error:
        raise ApiError(400, str(error)) from None
