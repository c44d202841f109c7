"""What a model needs to know about its data, independent of where it comes from."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataInfo:
    """Shape and meaning of one training item.

    Batches are ``dict[str, Tensor]``: ``x`` is the item (vectors [B, D], images [B, C, H, W]
    in [-1, 1], token ids [B, L]); ``y`` an integer class label when the data has classes;
    paired and unpaired image data use ``a`` and ``b``.
    """

    kind: str  # vector | image | sequence | paired | unpaired
    shape: tuple[int, ...]  # one item's shape: (D,), (C, H, W) or (L,)
    name: str = ""  # the data source, for reports and protocol keys
    num_classes: int = 0
    class_names: list[str] = field(default_factory=list)
    vocab: list[str] = field(default_factory=list)  # tokens, for sequence data or text conditions
    size: int = 0  # number of training items (0 = unknown or streamed)
    # Vector data: nets see (x - shift) / scale (centred, unit RMS) and generate in data space.
    shift: list[float] = field(default_factory=list)
    scale: float = 1.0

    @property
    def is_image(self) -> bool:
        return self.kind in ("image", "paired", "unpaired")
