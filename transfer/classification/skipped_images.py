"""Images skipped as unreadable (``features.skip_unreadable=true``): each warned about once, all recorded.

A task reports them in ``results.json`` under ``config``: ``skipped_unreadable_images`` (the count, 0
when none) and, when some were skipped, ``skipped_unreadable_paths`` (the first ``MAX_LISTED_PATHS``).
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

logger = logging.getLogger(__name__)

MAX_LISTED_PATHS = 20


class SkippedImages:
    """The distinct image paths skipped so far, in the order they were met."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._seen: set[str] = set()

    def add(self, paths: Iterable[str], warn: bool = True) -> None:
        """Records ``paths``; a path met for the first time is logged as a warning (when ``warn``)."""
        for path in paths:
            if path in self._seen:
                continue
            self._seen.add(path)
            self.paths.append(path)
            if warn:
                logger.warning("skipped unreadable image %s (features.skip_unreadable=true)", path)

    def result_fields(self) -> dict[str, Any]:
        """The ``results.json`` config entries: the count and, if any, the first paths."""
        fields: dict[str, Any] = {"skipped_unreadable_images": len(self.paths)}
        if self.paths:
            fields["skipped_unreadable_paths"] = self.paths[:MAX_LISTED_PATHS]
        return fields
