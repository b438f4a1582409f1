"""`python -m bot.demo`: the same as `python app.py --demo`."""

import sys

from bot.demo import main

sys.exit(main())
