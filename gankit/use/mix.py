"""Style mixing (Karras et al. 2019): images whose style layers come from two latents.

Cell ``(row, col)`` of the grid takes every style layer from the row seed's ``w`` except
the layers ``A..B``, which come from the column seed's. Early layers act at coarse
resolutions (pose, face shape, layout), late ones at fine (colours, texture). Only nets
that declare style layers (``num_ws > 0``) can mix; the others refuse in one line.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gankit.errors import ConfigError
from gankit.use.generator import GeneratorHandle, require_images


def parse_layers(text: str, num_ws: int) -> list[int]:
    """``A-B`` (inclusive) or ``A`` -> the layer indices, checked against ``num_ws``."""
    try:
        a, _, b = text.partition("-")
        layers = list(range(int(a), int(b or a) + 1))
    except ValueError:
        raise ConfigError(f"--layers takes A-B (style layers, 0-{num_ws - 1}); got '{text}'") from None
    if not layers or layers[0] < 0 or layers[-1] >= num_ws:
        raise ConfigError(f"--layers must lie within 0-{num_ws - 1} (this generator's style layers); got '{text}'")
    return layers


def _w_of(handle: GeneratorHandle, seeds: list[int], truncation: float | None, c: Tensor | None) -> Tensor:
    return torch.cat([handle.draw(1, s, truncation, None if c is None else c[i:i + 1])
                      for i, s in enumerate(seeds)])


@torch.no_grad()
def mix_grid(handle: GeneratorHandle, rows: list[int], cols: list[int], layers: list[int],
             truncation: float | None = None, cond: str | None = None) -> Tensor:
    """Images ``[1 + len(rows), 1 + len(cols), C, H, W]``: the top row the column seeds'
    images, the left column the row seeds', the rest mixed; the top-left corner blank."""
    require_images(handle, "mix")
    handle.require_space("w+")
    c_rows, c_cols = handle.conditions(len(rows), cond), handle.conditions(len(cols), cond)
    w_rows, w_cols = _w_of(handle, rows, truncation, c_rows), _w_of(handle, cols, truncation, c_cols)
    ws = handle.to_ws(w_rows)[:, None].repeat(1, len(cols), 1, 1)  # [R, C, num_ws, w_dim]
    ws[:, :, layers] = handle.to_ws(w_cols)[None, :, layers]
    mixed = handle.synthesize(ws.flatten(0, 1), None, "w+").float().cpu()
    top = handle.synthesize(w_cols, None, "w").float().cpu()
    left = handle.synthesize(w_rows, None, "w").float().cpu()
    grid = torch.full((1 + len(rows), 1 + len(cols), *mixed.shape[1:]), -1.0)
    grid[0, 1:], grid[1:, 0] = top, left
    grid[1:, 1:] = mixed.reshape(len(rows), len(cols), *mixed.shape[1:])
    return grid
