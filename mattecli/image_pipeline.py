"""Old home of the ``matte image`` batch pipeline, now :mod:`mattecli.image` (outputs, backgrounds,
planning, pipeline): these names are re-exported from there.

Temporary: the lead removes it at merge (other branches may still import ``mattecli.image_pipeline``).
"""

from __future__ import annotations

from mattecli.image.backgrounds import Backdrop, prepare_background
from mattecli.image.encoding import write_bytes as write_file
from mattecli.image.outputs import (
    OUTPUT_TAGS,
    PREVIEW_SUFFIX,
    OutputOptions,
    allowed_formats,
    check_options,
    format_refusal,
    is_own_output,
    normal_extension,
    preview_path,
)
from mattecli.image.pipeline import BatchSummary, encode_result, process_image, run_jobs, write_stdout
from mattecli.image.planning import STDIN, STDOUT, ImageJob, plan_jobs

__all__ = [
    "OUTPUT_TAGS",
    "PREVIEW_SUFFIX",
    "STDIN",
    "STDOUT",
    "Backdrop",
    "BatchSummary",
    "ImageJob",
    "OutputOptions",
    "allowed_formats",
    "check_options",
    "encode_result",
    "format_refusal",
    "is_own_output",
    "normal_extension",
    "plan_jobs",
    "prepare_background",
    "preview_path",
    "process_image",
    "run_jobs",
    "write_file",
    "write_stdout",
]
