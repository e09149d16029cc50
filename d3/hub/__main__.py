import sys

from d3.hub.cli import main

sys.exit(main())
