"""``matte image``: the command's pipeline over :mod:`mattecli.image` (reading and writing still images) and
:mod:`mattecli.render` (the outputs of a matte).

Example::

    from mattecli import Matter
    from mattecli.photo import OutputOptions, plan_jobs, run_jobs
    summary = run_jobs(Matter(), plan_jobs(["shots/"], "cut/", OutputOptions()), OutputOptions())

Modules: :mod:`~mattecli.photo.outputs` (``matte image``'s output options, format rules and names),
:mod:`~mattecli.photo.backgrounds` (``--bg``), :mod:`~mattecli.photo.planning` (inputs -> jobs, refused
before the model loads) and :mod:`~mattecli.photo.pipeline` (running the jobs).

The names below are imported on first use (PEP 562), so that importing the package costs nothing until a
name is used.
"""

from __future__ import annotations

from mattecli.lazy_exports import lazy_exports

_EXPORTS = {
    "OUTPUT_TAGS": "outputs",
    "OutputOptions": "outputs",
    "check_output_options": "outputs",
    "format_refusal": "outputs",
    "is_own_output": "outputs",
    "preview_path": "outputs",
    "Backdrop": "backgrounds",
    "prepare_background": "backgrounds",
    "STDIN": "planning",
    "STDOUT": "planning",
    "ImageJob": "planning",
    "plan_jobs": "planning",
    "BatchSummary": "pipeline",
    "encode_result": "pipeline",
    "process_image": "pipeline",
    "run_jobs": "pipeline",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
