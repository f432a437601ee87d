"""temporary: the lead removes it at merge (moved to mattecli.catalog)."""

from mattecli.catalog import *  # noqa: F403
from mattecli.catalog import (  # noqa: F401
    ALIASES,
    DEFAULT_MODEL,
    MODEL_SUFFIXES,
    SUFFIX,
    ModelEntry,
    bundled_dir,
    cache_dir,
    describe_entry,
    find_model,
    list_models,
    looks_like_path,
    resolve_model,
    unknown_model,
)
