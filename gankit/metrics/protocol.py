"""Protocols: how a statistic or a score was measured, and the guard against mixing two.

A protocol is a flat JSON-able dict such as::

    {"extractor": "inception-v3-tf", "weights": "sha256:1a2b...", "resize": "tf-bilinear-299",
     "input": "uint8", "image_size": 64, "data": "anime64", "n": 10000}

Two FID values (or two statistics) are only comparable when their protocols agree; published
FIDs differ by more than the gap between two models when, say, the resize filter changes.
Statistics read from a foreign ``.npz`` file carry no protocol: they are marked
:data:`UNKNOWN` and can still be used, with a warning, because users bring them on purpose.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from gankit.errors import DataError

Protocol = dict[str, Any]
UNKNOWN = "unknown"
UNKNOWN_PROTOCOL: Protocol = {"origin": UNKNOWN}

# Fields that describe what was measured, not how: two statistics of different data or
# sample counts may still be compared by FID (that is the whole point of FID).
SAMPLE_FIELDS = ("data", "n", "origin", "file", "cache_key", "subset", "data_id")


class ProtocolMismatch(DataError):
    """Two statistics or scores were measured differently and cannot be compared."""


def is_unknown(protocol: Protocol) -> bool:
    """True for statistics read from a file that did not record how they were measured."""
    return protocol.get("origin") == UNKNOWN


def protocol_differences(a: Protocol, b: Protocol, ignore: Iterable[str] = ()) -> list[str]:
    """Human-readable differences, e.g. ``["resize ('tf-bilinear-299' vs 'pil-bicubic')"]``."""
    skip = set(ignore)
    diffs = []
    for key in sorted((set(a) | set(b)) - skip):
        va, vb = a.get(key, "<missing>"), b.get(key, "<missing>")
        if va != vb:
            diffs.append(f"{key} ({va!r} vs {vb!r})")
    return diffs


def check_same_protocol(a: Protocol, b: Protocol, what: str,
                        ignore: Iterable[str] = ()) -> None:
    """Raise :class:`ProtocolMismatch` naming every field in which ``a`` and ``b`` differ.

    A protocol marked unknown matches anything: the caller records that in the result.
    """
    if is_unknown(a) or is_unknown(b):
        return
    diffs = protocol_differences(a, b, ignore)
    if diffs:
        raise ProtocolMismatch(
            f"refusing to compare {what}: their protocols differ in {'; '.join(diffs)}; "
            "recompute one side with the other's settings"
        )


def feature_protocol(protocol: Protocol) -> Protocol:
    """The part of a statistics protocol that must match for an FID: the extractor side."""
    return {k: v for k, v in protocol.items() if k not in SAMPLE_FIELDS}


def to_json(protocol: Protocol) -> str:
    """A canonical JSON text (sorted keys), used in files and cache keys."""
    return json.dumps(protocol, sort_keys=True, default=str)


def from_json(text: str, where: str) -> Protocol:
    """Parse a stored protocol; DataError when the text is not a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise DataError(f"the protocol stored in '{where}' is not valid JSON; "
                        "delete the file and recompute it") from None
    if not isinstance(value, dict):
        raise DataError(f"the protocol stored in '{where}' must be a JSON object")
    return value
