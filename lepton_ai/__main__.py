"""`python -m lepton_ai …` is the `lepton` command."""

from lepton_ai.cli import main

raise SystemExit(main())
