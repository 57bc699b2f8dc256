"""`python -m pipelines`: golden-spec maintenance without the CLI.

python -m pipelines --check              # compare every pipeline with its golden.yaml
python -m pipelines --update-golden [N]  # rewrite golden.yaml (all, or the named pipelines)
"""

from __future__ import annotations

import argparse
import sys

from pipelines.framework import check_golden, list_pipelines, update_golden


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="compare compiled specs with the goldens")
    mode.add_argument("--update-golden", action="store_true", help="rewrite the goldens")
    parser.add_argument("names", nargs="*", help="pipelines (default: all)")
    args = parser.parse_args(argv)
    names = args.names or list_pipelines()
    unknown = sorted(set(names) - set(list_pipelines()))
    if unknown:
        parser.error(f"unknown pipeline(s): {', '.join(unknown)}")
    failed = 0
    for name in names:
        if args.update_golden:
            print(f"{name}: wrote {update_golden(name)}")
            continue
        diffs = check_golden(name)
        failed += bool(diffs)
        print(f"{name}: {'OK' if not diffs else f'{len(diffs)} difference(s)'}")
        for d in diffs[:20]:
            print(f"  {d}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
