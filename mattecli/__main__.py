"""``python -m mattecli`` runs the ``matte`` command line."""

from mattecli.cli.app import main

main()
