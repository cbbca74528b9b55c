"""Retrain the production model from a TOML file, promote it only if it beats production, or roll back.

    python scripts/retrain.py --config retrain.toml [--dry-run] [--warm-start] [--rollback] [--report FILE]

The same as `textpipe retrain`: exit status 0 promoted (or rolled back), 3 production kept (a dry run: 0 or 3 as
it would have decided), 2 bad config or data, 1 any other failure. Layout and decisions are described in textpipe/retrain.py.
"""

import sys

from textpipe.cli import main

if __name__ == "__main__":
    sys.exit(main(["retrain", *sys.argv[1:]]))
