"""``python -m ttsbatch.dev.fakeprovider --port 8808 shape=b64 fault_rate=0.3``."""

from __future__ import annotations

import argparse
import dataclasses

from ttsbatch.dev.fakeprovider.config import FakeProviderConfig, option_names, parse_options
from ttsbatch.dev.fakeprovider.server import main


def cli() -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description="Serve the ttsbatch imitation speech provider.")
    parser.add_argument("--port", type=int, default=8808)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("options", nargs="*", help=f"key=value; keys: {', '.join(option_names())}")
    args = parser.parse_args()
    pairs = dict(option.split("=", 1) for option in args.options)
    config = parse_options(FakeProviderConfig(), pairs)
    main(
        args.port,
        args.host,
        **{f.name: getattr(config, f.name) for f in dataclasses.fields(config)},
    )


if __name__ == "__main__":
    cli()
