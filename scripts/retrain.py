"""Retrain the production model from a TOML file, promote it only if it beats production, or roll back.

    python scripts/retrain.py --config retrain.toml [--dry-run] [--warm-start] [--rollback] [--report FILE]

Layout, decisions and exit codes (0 promoted, 3 kept, 2 bad config/data, 1 other failure) are described in
textpipe/retrain.py; this script only parses arguments and calls it.
"""

import argparse
import sys

from textpipe.retrain import add_arguments, run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="retrain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
