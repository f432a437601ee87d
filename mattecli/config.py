"""Old import path of :mod:`mattecli.modelfiles.config`, kept so that ``mattecli.config`` keeps working: this
name is that module itself (same object, so attributes set on one are seen by the other)."""

import sys

from mattecli.modelfiles import config

sys.modules[__name__] = config
