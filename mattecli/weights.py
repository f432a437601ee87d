"""Old import path of :mod:`mattecli.modelfiles.weights`, kept so that ``mattecli.weights`` keeps working: this
name is that module itself (same object, so attributes set on one are seen by the other)."""

import sys

from mattecli.modelfiles import weights

sys.modules[__name__] = weights
