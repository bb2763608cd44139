"""`python -m starbox.jupyter lab|voila ...`: see `launch.launch`."""

import sys

from .launch import launch

launch(sys.argv[1:])
