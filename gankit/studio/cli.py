"""``gankit studio [RUN ...] [--host 127.0.0.1] [--port N]``: serve the studio page."""
from __future__ import annotations

import argparse
import ipaddress
import socket
import sys

from gankit.errors import GankitError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: a free one), so the address printed is the one served."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # inherited by accepted connections: a small picture is not held back waiting for an ACK
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise GankitError(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port") from None
    sock.listen(64)
    return sock


def run_studio(args: argparse.Namespace) -> int:
    """Check the runs, bind, print the address and serve until interrupted."""
    try:
        import starlette  # noqa: F401  (gankit.studio.app's, checked here for a one-line error)
        import uvicorn
    except ImportError:
        raise GankitError("gankit studio needs starlette and uvicorn: pip install 'gankit[studio]'") from None
    import torch

    from gankit.studio.app import create_app
    from gankit.studio.core import Studio, load_directions, served_runs

    if args.threads:
        torch.set_num_threads(args.threads)
    studio = Studio(served_runs(args.runs), max_upload=int(args.max_upload_mb * 2**20),
                    directions=load_directions(args.directions or []))
    loopback = _is_loopback(args.host)
    # on loopback, refuse requests for other host names (DNS rebinding from a web page)
    app = create_app(studio, allowed_hosts=list(LOOPBACK_NAMES) if loopback else None)
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"gankit studio: {len(studio.runs)} run(s) at http://{shown}:{port}/ (Ctrl-C stops it)", flush=True)
    if not loopback:
        print(f"note: listening on {args.host}, not only this machine; anyone who can reach it can "
              "use the studio", file=sys.stderr)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    server.run(sockets=[sock])
    return 0


def add_parsers(sub) -> None:
    """Register ``gankit studio`` on the ``gankit`` subcommand parser."""
    s = sub.add_parser("studio", help="a local web page to explore trained generators")
    s.add_argument("runs", nargs="*", metavar="RUN", help="run folders (default: every run under runs/)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8765, help="port (0: any free one); default 8765")
    s.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    s.add_argument("--directions", action="append", metavar="FILE",
                   help="a gankit directions file: edit sliders for the runs it fits (repeatable)")
    s.add_argument("--max-upload-mb", type=float, default=8.0, help="largest image upload accepted (MB)")
    s.set_defaults(func=run_studio)
