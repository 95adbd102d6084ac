"""A plugin whose import fails, as one with a missing dependency would."""

import synthmed_missing_dependency  # noqa: F401
