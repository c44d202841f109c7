"""``gankit export RUN --format safetensors|onnx``: a trained generator outside its run folder.

* **safetensors**: the weights of the nets a model samples with (its EMA copies by default,
  ``--live`` for the trained ones) and, in the file's string metadata, the run config, the
  data info and the facts a loader needs (net name, latent size, output shape,
  conditioning, truncation and where its ``w_avg`` is). :func:`load_exported` rebuilds the
  model from that metadata with gankit's own code: nothing in the file is executed or
  unpickled and no run folder is needed; ``gankit sample g.safetensors`` works like a run
  and draws the same images bit for bit (the same code on the same weights).
* **ONNX**: one graph per direction of use, with a dynamic batch and inputs named for what
  they are (``z``, ``labels`` or ``tags``, ``psi`` where the net truncates towards
  ``w_avg``, ``image`` for translators). After export, onnxruntime runs the graph on fresh
  inputs of another batch size next to torch; a max abs difference above
  :data:`TOLERANCE` refuses the export (nothing is left behind).

What a model kind exports is registered here by kind (:data:`EXPORTS`), as the kinds'
own metrics are in :mod:`gankit.metrics.runs`; a kind without an entry, or a net whose ops
ONNX lacks, is refused in one line that says why.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from gankit.data.pack import atomic_output
from gankit.errors import CheckpointError, ConfigError, GankitError, Unsupported
from gankit.registry import Registry

FORMAT = "gankit-generator"  # the metadata's "format": what a loader checks first
VERSION = "1"
FORMATS = ("safetensors", "onnx")
TOLERANCE = 1e-4  # onnxruntime vs torch, fp32: the largest difference an export may keep
OPSET = 17


@dataclass
class Graph:
    """One ONNX graph: ``module(*inputs)`` -> ``image``, with inputs made for a batch size."""

    suffix: str  # added to the file name when a model exports several graphs ('' for one)
    module: nn.Module
    make_inputs: Callable[[int], dict[str, Tensor]]  # batch size -> named inputs, in order
    unbatched: tuple[str, ...] = ()  # inputs without a batch axis (psi)
    reference: nn.Module | None = None  # what the graph must match (default: module itself)
    output: str = "image"  # the output's name ("translated" where an input is the image)


@dataclass(frozen=True)
class Export:
    """What a model kind exports: ``graphs(model, use_ema)`` for ONNX; the safetensors file
    holds the nets of ``model.ema_targets()``, which are all its sampling reads."""

    graphs: Callable[[nn.Module, bool], list[Graph]]


EXPORTS: Registry[Export] = Registry("exportable model kind")


def exporter(kind: str) -> Callable:
    """Decorator: register ``graphs(model, use_ema) -> [Graph]`` as model kind ``kind``'s export."""
    def deco(graphs: Callable[[nn.Module, bool], list[Graph]]) -> Callable:
        EXPORTS.add(kind, Export(graphs))
        return graphs

    return deco


def _export_of(model: nn.Module) -> Export:
    if model.kind not in EXPORTS:
        raise Unsupported(f"model kind '{model.kind}' has no export (only image generators do); "
                          f"exportable kinds: {', '.join(EXPORTS.names())}")
    return EXPORTS.get(model.kind)


# ---- safetensors ---------------------------------------------------------------------------
def generator_facts(model: nn.Module) -> dict:
    """What a loader needs to know without reading the config, JSON-able: for a latent
    generator, what its :class:`~gankit.use.generator.GeneratorHandle` declares (latent
    spaces, conditioning, output, truncation) and the weight that holds ``w_avg``."""
    from gankit.use.generator import GeneratorHandle

    facts = {"kind": model.kind, "net": model.cfg.G.name, "out_shape": list(model.info.shape),
             "conditioning": {"kind": "image" if model.info.kind in ("paired", "unpaired") else "none"}}
    try:
        handle = GeneratorHandle.from_model(model)
    except Unsupported:  # the VAE's decoder, the flow, translators: no handle to ask
        latent = int(getattr(model, "z_dim", 0) or getattr(model, "dims", 0))
        if latent:
            facts["latent_spaces"] = {"z": {"name": "z", "shape": [latent], "prior": "normal"}}
        return facts
    facts.update(json.loads(json.dumps(handle.describe())))  # tuples -> lists, as read back
    if handle.has_mapping:
        facts["w_avg"] = _weight_name(model, handle.w_avg())
    return facts


def _weight_name(model: nn.Module, tensor: Tensor) -> str:
    """The key of ``tensor`` among the exported weights (``'G.mapping.w_avg'``)."""
    for name in model.ema_targets():
        for key, value in model.net(name).state_dict(keep_vars=True).items():
            if value is tensor:
                return f"{name}.{key}"
    return ""


def _require(*modules: str) -> None:
    """A one-line error naming the extra to install when an optional package is missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise GankitError(f"gankit export needs {', '.join(missing)}: pip install 'gankit[export]'")


def save_safetensors(run, out: Path, live: bool = False) -> Path:
    """Write the run's sampling nets and their metadata to ``out`` (atomically)."""
    _require("safetensors")
    from safetensors.torch import save_file

    model = run.model
    _export_of(model)
    names = list(model.ema_targets())
    tensors = {f"{name}.{key}": value.detach().cpu().contiguous().clone()
               for name in names for key, value in model.net(name, not live).state_dict().items()}
    metadata = {"format": FORMAT, "version": VERSION, "kind": model.kind, "nets": json.dumps(names),
                "weights": "live" if live else "ema", "step": str(run.step),
                "config": json.dumps(run.cfg.to_dict()), "info": json.dumps(asdict(run.info)),
                "generator": json.dumps(generator_facts(model))}
    with atomic_output(Path(out)) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return out


def load_exported(path: str | Path, device: str | torch.device = "cpu"):
    """A :class:`gankit.api.LoadedRun` rebuilt from a safetensors export (no run folder)."""
    from gankit.api import LoadedRun
    from gankit.config import config_from_dict
    from gankit.data.info import DataInfo
    from gankit.models import MODELS

    path = Path(path)
    metadata, tensors = _read_safetensors(path)
    try:
        cfg = config_from_dict(json.loads(metadata["config"]))
        info_d = json.loads(metadata["info"])
        info = DataInfo(**{**info_d, "shape": tuple(info_d["shape"])})
        names = json.loads(metadata["nets"])
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise CheckpointError(f"'{path}' has unreadable gankit metadata ({type(e).__name__}: {e})") from None
    model = MODELS.get(cfg.model.kind)(cfg, info)
    for name in names:  # the exported weights go into the live nets; sampling falls back to them
        prefix = f"{name}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            getattr(model, name).load_state_dict(state, strict=True)
        except (AttributeError, RuntimeError) as e:
            raise CheckpointError(f"'{path}' does not match the net its config builds "
                                  f"({str(e).splitlines()[0][:120]})") from None
    model.to(device).eval()
    return LoadedRun(model, cfg, info, path.parent, int(metadata.get("step", 0)))


def _read_safetensors(path: Path) -> tuple[dict[str, str], dict[str, Tensor]]:
    _require("safetensors")
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise CheckpointError(f"'{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"'{path}' is not a readable safetensors file ({e})") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is a safetensors file but not a gankit export (no "
                              f"'format: {FORMAT}' metadata); export one with gankit export RUN")
    if metadata.get("version") != VERSION:
        raise CheckpointError(f"'{path}' is export version {metadata.get('version')}; this gankit "
                              f"reads version {VERSION}")
    return metadata, tensors


# ---- ONNX ----------------------------------------------------------------------------------
@dataclass
class OnnxResult:
    path: Path
    seconds: float
    max_diff: float
    size: int


def save_onnx(run, out: Path, live: bool = False, check_batch: int = 3) -> list[OnnxResult]:
    """Export each graph of the run's kind to ONNX and check it with onnxruntime."""
    _require("onnx", "onnxruntime")
    graphs = _export_of(run.model).graphs(run.model, not live)
    results = []
    for graph in graphs:
        # eval as a whole: the exporter restores the wrapper's mode afterwards, recursively,
        # and a wrapper left in train mode would put BatchNorm back on batch statistics
        graph.module.eval()
        if graph.reference is not None:
            graph.reference.eval()
        path = out if not graph.suffix else out.with_name(f"{out.stem}_{graph.suffix}{out.suffix}")
        start = time.perf_counter()
        with atomic_output(path) as tmp:
            _to_onnx(graph, tmp, run.model.kind)
            seconds = time.perf_counter() - start
            diff = check_onnx(tmp, graph, check_batch)
            if not diff <= TOLERANCE:
                raise GankitError(f"the ONNX graph of '{path.name}' differs from torch by {diff:.3g} "
                                  f"(more than {TOLERANCE:g}); export refused, nothing written")
        results.append(OnnxResult(path, seconds, diff, path.stat().st_size))
    return results


def _to_onnx(graph: Graph, path: Path, kind: str) -> None:
    """torch.onnx's TorchScript exporter (``dynamo=False``): 0.4 s for the anime64 DCGAN where
    the dynamo exporter took 6-15 s, with the same max difference to torch (BENCHMARKS.md,
    "Export and data"); it also needs no onnxscript."""
    inputs = graph.make_inputs(2)
    axes = {name: {0: "batch"} for name in inputs if name not in graph.unbatched}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarnings about shape checks on constants
            torch.onnx.export(graph.module, tuple(inputs.values()), str(path), input_names=list(inputs),
                              output_names=[graph.output], dynamic_axes={**axes, graph.output: {0: "batch"}},
                              opset_version=OPSET, dynamo=False)
    except Exception as e:  # noqa: BLE001 -- the exporter raises many types; its message names the op
        raise Unsupported(f"ONNX cannot express the {kind} generator: {_first_line(e)}") from None


def check_onnx(path: Path, graph: Graph, batch: int = 3, threads: int = 1) -> float:
    """Max abs difference between onnxruntime and torch on fresh inputs of ``batch`` items
    (another batch size than the export's, so the dynamic batch is checked too)."""
    import onnxruntime as ort

    inputs = graph.make_inputs(batch)
    with torch.no_grad():
        expected = (graph.reference or graph.module)(*inputs.values())
    session = ort.InferenceSession(str(path), _session_options(threads), providers=["CPUExecutionProvider"])
    got = session.run([graph.output], {k: v.numpy() for k, v in inputs.items()})[0]
    if tuple(got.shape) != tuple(expected.shape):
        return float("inf")
    return float((torch.from_numpy(got) - expected).abs().max())


def _session_options(threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    return options


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


class _Sampler(nn.Module):
    """``forward(*inputs)`` in :class:`Graph` order -> images, for latent generators:
    ``G(z, c)``, or with ``psi`` the mapping, truncation towards ``w_avg`` and synthesis."""

    def __init__(self, G: nn.Module, names: list[str], post: Callable[[Tensor], Tensor] | None = None):
        super().__init__()
        self.G, self.names, self.post = G.eval(), names, post

    def forward(self, *inputs: Tensor) -> Tensor:
        named = dict(zip(self.names, inputs))
        c = named.get("labels", named.get("tags"))
        if "psi" in named:
            out = _truncated(self.G, named["z"], c, named["psi"])
        else:
            out = self.G(named["z"], c) if c is not None else self.G(named["z"])
        return self.post(out) if self.post is not None else out


def _truncated(G: nn.Module, z: Tensor, c: Tensor | None, psi: Tensor) -> Tensor:
    """Through what the net declares (map_latent, w_average, synthesize_ws): the mapping,
    ``w_avg + psi (w - w_avg)``, the same ``w`` in every style layer, synthesis."""
    encoder = getattr(G, "encoder", None)
    net = G.net if encoder is not None else G
    w = net.map_latent(z, encoder(c) if encoder is not None else None)
    avg = net.w_average()
    w = avg + psi * (w - avg)
    return net.synthesize_ws(w.unsqueeze(1).repeat(1, net.num_ws, 1))


def _latent_inputs(model: nn.Module, z_dim: int, truncation: bool) -> Callable[[int], dict[str, Tensor]]:
    """Inputs of a latent generator: ``z``, its conditions in turn, and ``psi`` = 0.7."""
    def make(n: int) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(n)
        inputs = {"z": torch.randn(n, z_dim, generator=g)}
        if model.space is not None:
            key = "labels" if model.space.condition == "label" else "tags"
            inputs[key] = model.space.default(n).cpu()
        if truncation:
            inputs["psi"] = torch.tensor([0.7])
        return inputs

    return make


def baked(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with its weight parametrizations (spectral norm) replaced by the
    weights they give in eval mode: ONNX has no op for the sigma estimate (``aten::vdot``),
    and in eval mode the weights are constants anyway."""
    from torch.nn.utils import parametrize

    net = copy.deepcopy(net).eval()
    for module in list(net.modules()):  # a list: baking changes the tree
        if parametrize.is_parametrized(module):
            values = {name: getattr(module, name).detach().clone() for name in module.parametrizations}
            # Not parametrize.remove_parametrizations: it deletes the weight property from the
            # parametrized class, which the copy shares with the original net.
            module.__class__ = module.__class__.__bases__[0]
            del module._modules["parametrizations"]
            for name, value in values.items():
                module.register_parameter(name, nn.Parameter(value, requires_grad=False))
    return net


@exporter("gan")
def _gan_graphs(model: nn.Module, use_ema: bool) -> list[Graph]:
    G = model.latent_generator(use_ema)
    net = G.net if getattr(G, "encoder", None) is not None else G  # a conditioned wrapper's net
    truncation = net.w_dim > 0  # a mapping net: psi pulls w towards w_avg
    make = _latent_inputs(model, model.z_dim, truncation)
    names = list(make(1))
    return [Graph("", _Sampler(baked(G), names), make, ("psi",) if truncation else (),
                  reference=_Sampler(G, names))]


@exporter("vae")
def _vae_graphs(model: nn.Module, use_ema: bool) -> list[Graph]:
    """The decoder's mean image (``model.sample_mode=sample`` adds p(x|z)'s pixel noise,
    which a deterministic graph leaves to the caller)."""
    likelihood = model.net("likelihood", use_ema).eval()
    make = _latent_inputs(model, model.z_dim, False)
    return [Graph("", _Sampler(model.net("decoder", use_ema), list(make(1)), likelihood.mean), make)]


class _FlowSampler(nn.Module):
    def __init__(self, model: nn.Module, flow: nn.Module):
        super().__init__()
        self.flow, self.to_data, self.shape = flow.eval(), model.to_data, tuple(model.info.shape)

    def forward(self, z: Tensor) -> Tensor:
        return self.to_data(self.flow.inverse(z).view(-1, *self.shape))


@exporter("flow")
def _flow_graphs(model: nn.Module, use_ema: bool) -> list[Graph]:
    """The inverse flow and the map to data space; ``z`` is drawn by the caller (gankit
    samples N(0, T^2) with ``model.temperature`` = T)."""
    def make(n: int) -> dict[str, Tensor]:
        return {"z": torch.randn(n, model.dims, generator=torch.Generator().manual_seed(n))}

    return [Graph("", _FlowSampler(model, model.net("flow", use_ema)), make)]


class _Translator(nn.Module):
    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G.eval()

    def forward(self, image: Tensor) -> Tensor:
        return self.G(image)


def _image_inputs(shape: tuple[int, ...]) -> Callable[[int], dict[str, Tensor]]:
    def make(n: int) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(n)
        return {"image": torch.rand(n, *shape, generator=g) * 2 - 1}

    return make


@exporter("pix2pix")
def _pix2pix_graphs(model: nn.Module, use_ema: bool) -> list[Graph]:
    return [Graph("", _Translator(model.net("G", use_ema)), _image_inputs(tuple(model.info.shape)),
                  output="translated")]


@exporter("cyclegan")
def _cyclegan_graphs(model: nn.Module, use_ema: bool) -> list[Graph]:
    """Both directions, named as the data's sides: G['AB'] translates ``data.direction``."""
    G, trained = model.net("G", use_ema), model.cfg.data.direction
    other = "BtoA" if trained == "AtoB" else "AtoB"
    make = _image_inputs(tuple(model.info.shape))
    return [Graph(trained, _Translator(G["AB"]), make, output="translated"),
            Graph(other, _Translator(G["BA"]), make, output="translated")]


# ---- files and the command -------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from gankit.api import load_run

    run = load_run(args.run)
    source = Path(args.run)
    default = (source if source.is_dir() else source.parent) / f"generator{'_live' if args.live else ''}.{args.format}"
    out = Path(args.out) if args.out else default
    if args.format == "safetensors":
        start = time.perf_counter()
        save_safetensors(run, out, live=args.live)
        print(f"wrote {out} ({out.stat().st_size / 2**20:.2f} MiB, {time.perf_counter() - start:.1f} s)")
        return 0
    for r in save_onnx(run, out, live=args.live):
        print(f"wrote {r.path} ({r.size / 2**20:.2f} MiB, {r.seconds:.1f} s); onnxruntime vs torch: "
              f"max abs difference {r.max_diff:.2g}")
    return 0


def add_parsers(sub) -> None:
    """``gankit export``."""
    e = sub.add_parser("export", help="export a run's generator to safetensors or ONNX")
    e.add_argument("run", metavar="RUN", help="a run folder, checkpoint, or exported .safetensors")
    e.add_argument("--format", required=True, choices=FORMATS)
    e.add_argument("--out", help="the file to write (default RUN/generator.FORMAT)")
    e.add_argument("--live", action="store_true", help="the trained generator, not its EMA copy")
    e.set_defaults(func=cmd_export)
