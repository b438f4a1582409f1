"""`python -m bot.teams.demo`: the same as `python app.py --demo`."""

import sys

from bot.teams.demo import main

sys.exit(main())
