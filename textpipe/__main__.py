import sys

from textpipe.cli import main

sys.exit(main())
