"""The studio's HTTP face: Starlette routes that parse a request's numbers, call one function
of :mod:`gankit.studio.core` and send back its picture or JSON. No route holds logic of its
own, reads a path from a request or unpickles anything: runs are named by their key.

Errors the user can fix (a bad seed, an unknown class, a non-image upload) come back as
``{"error": "..."}`` with status 400 (404 for a run not served, 413 for an upload over the
limit), which the page shows as a message.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import torch
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gankit.errors import GankitError
from gankit.studio import core

STATIC = Path(__file__).parent / "static"


class TooLarge(GankitError):
    """An upload over the studio's size limit."""


def _number(request: Request, name: str, kind: type, default: Any = None) -> Any:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise GankitError(f"{name} must be {'an integer' if kind is int else 'a number'}, got '{raw[:40]}'") from None


def _seeds(request: Request) -> tuple[int, int]:
    return _number(request, "seed", int, 0), _number(request, "seed2", int, 1)


def _truncation(request: Request, run) -> float | None:
    return core.truncation_value(run, _number(request, "truncation", float))


def _picture(image: Image.Image | bytes, media: str, started: float) -> Response:
    body = image if isinstance(image, bytes) else core.png_bytes(image)
    # Server-Timing: the time spent drawing, which the benchmark separates from transport
    return Response(body, media_type=media, headers={
        "Cache-Control": "no-store", "Server-Timing": f"draw;dur={1000 * (time.perf_counter() - started):.1f}"})


def create_app(studio: core.Studio, allowed_hosts: list[str] | None = None) -> Starlette:
    """The studio's web application over ``studio``'s runs; with ``allowed_hosts`` a request
    naming another Host is refused (a web page elsewhere cannot reach the studio through a
    DNS name pointed at 127.0.0.1)."""

    def drawing(make: Callable[[Request, Any], Image.Image | bytes], media: str = "image/png"):
        """A GET route: ``make(request, run)`` under the studio's lock, in a worker thread."""
        async def endpoint(request: Request) -> Response:
            key = request.query_params.get("run", "")

            def work():
                with studio.lock:
                    run = studio.run(key)  # loaded once, on first use
                    started = time.perf_counter()
                    return _picture(make(request, run), media, started)
            return await run_in_threadpool(work)
        return endpoint

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def runs(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(lambda: _locked(studio, studio.listing)))

    async def run_info(request: Request) -> Response:
        key = request.query_params.get("run", "")
        return JSONResponse(await run_in_threadpool(lambda: _locked(studio, studio.describe, key)))

    def upload(make: Callable[[Request, str, bytes], tuple[Image.Image, dict[str, str]]]):
        """A POST route whose body is one image: ``make(request, key, data)`` -> (picture,
        extra headers), under the studio's lock, in a worker thread."""
        async def endpoint(request: Request) -> Response:
            key = request.query_params.get("run", "")
            studio.path(key)  # a run not served is refused before its upload is read
            data = await _read_limited(request, studio.max_upload)

            def work():
                with studio.lock:
                    started = time.perf_counter()
                    image, headers = make(request, key, data)
                    response = _picture(image, "image/png", started)
                    response.headers.update(headers)
                    return response
            return await run_in_threadpool(work)
        return endpoint

    def projected(q: Request, key: str, data: bytes) -> tuple[Image.Image, dict[str, str]]:
        image, psnr, pid = studio.project(key, data, _number(q, "steps", int, 100), q.query_params.get("cond"),
                                          _number(q, "seed", int, 0))
        return image, {"X-PSNR": f"{psnr:.2f}", "X-Projection": pid}

    def edits(q: Request) -> torch.Tensor | None:
        return core.edit_offset(studio.directions, q.query_params.getlist("edit"))

    routes = [
        Route("/", index),
        Route("/api/runs", runs),
        Route("/api/run", run_info),
        Route("/api/samples.png", drawing(lambda q, run: core.sample_grid(
            run, _number(q, "n", int, 16), _number(q, "seed", int, 0), q.query_params.get("cond"),
            _truncation(q, run), edits(q)))),
        Route("/api/projection.png", drawing(lambda q, run: studio.edit_projection(
            q.query_params.get("id", ""), q.query_params.getlist("edit")))),
        Route("/api/scatter.png", drawing(lambda q, run: core.scatter(
            run, _number(q, "n", int, 1000), _number(q, "seed", int, 0), _truncation(q, run)))),
        Route("/api/interpolation.png", drawing(lambda q, run: core.interpolation(
            run, _seeds(q), _number(q, "t", float, 0.0), q.query_params.get("cond"), _truncation(q, run)))),
        Route("/api/interpolation.gif", drawing(lambda q, run: core.interpolation_gif(
            run, _seeds(q), _number(q, "frames", int, 16), q.query_params.get("cond"), _truncation(q, run)),
            "image/gif")),
        Route("/api/translate", upload(lambda q, key, data: (
            core.translate_upload(studio.run(key), data, studio.max_upload), {})), methods=["POST"]),
        Route("/api/project", upload(projected), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)] if allowed_hosts else []
    return Starlette(routes=routes, middleware=middleware, exception_handlers={GankitError: _error})


def _locked(studio: core.Studio, fn: Callable, *args: Any) -> Any:
    with studio.lock:
        return fn(*args)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes: a declared
    Content-Length over it is refused before anything is read."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the upload is {int(declared) / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the upload is over the limit of {limit / 2**20:.0f} MB")
        chunks.append(chunk)
    return b"".join(chunks)


async def _error(request: Request, exc: Exception) -> Response:
    status = 404 if isinstance(exc, core.NotServed) else 413 if isinstance(exc, TooLarge) else 400
    return JSONResponse({"error": str(exc)}, status_code=status)
