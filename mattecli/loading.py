"""Old import path of :mod:`mattecli.modelfiles.loading`, kept so that ``mattecli.loading`` keeps working: this
name is that module itself (same object, so attributes set on one are seen by the other)."""

import sys

from mattecli.modelfiles import loading

sys.modules[__name__] = loading
