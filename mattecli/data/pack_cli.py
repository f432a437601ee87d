"""``python -m mattecli.data.pack``: pack, estimate foregrounds, verify (see :mod:`mattecli.data.pack`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mattecli.data.pack import __doc__ as pack_doc
from mattecli.data.pack import estimate_pack_foregrounds, pack_training_data
from mattecli.data.pack_verify import verify_pack
from mattecli.errors import MatteError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mattecli.data.pack", description=pack_doc.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    pack = commands.add_parser("pack", help="pack the training split of RECIPE into DEST")
    pack.add_argument("recipe", type=Path)
    pack.add_argument("dest", type=Path)
    pack.add_argument("--long-side", type=int, default=640)
    pack.add_argument("--quality", type=int, default=92)
    pack.add_argument("--workers", type=int, default=None)
    fg = commands.add_parser("foregrounds", help="estimate the foreground colours of a pack (on its machine)")
    fg.add_argument("dest", type=Path)
    fg.add_argument("--workers", type=int, default=None)
    check = commands.add_parser("verify", help="compare a pack (after 'foregrounds') with its recipe")
    check.add_argument("recipe", type=Path)
    check.add_argument("packed_spec", type=Path)
    check.add_argument("--size", type=int, default=320)
    check.add_argument("--samples", type=int, default=4)
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            summary = pack_training_data(
                args.recipe, args.dest, long_side=args.long_side, quality=args.quality, workers=args.workers
            )
            print(json.dumps({"spec": str(summary.spec), "counts": summary.counts, "bytes": summary.bytes}))
        elif args.command == "foregrounds":
            print(f"estimated {estimate_pack_foregrounds(args.dest, args.workers)} foregrounds")
        else:
            report = verify_pack(args.recipe, args.packed_spec, size=args.size, samples=args.samples)
            print(
                json.dumps(
                    {
                        "counts": report.counts,
                        "alpha_error": report.alpha_error,
                        "image_error": report.image_error,
                        "problems": report.problems,
                    },
                    indent=1,
                )
            )
            return 0 if report.ok else 1
    except MatteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
