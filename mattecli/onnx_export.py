"""Old import path of :mod:`mattecli.modelfiles.onnx_export`, kept so that ``mattecli.onnx_export`` keeps working: this
name is that module itself (same object, so attributes set on one are seen by the other)."""

import sys

from mattecli.modelfiles import onnx_export

sys.modules[__name__] = onnx_export
