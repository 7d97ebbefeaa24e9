"""`python -m cdchub.cli` runs the command line (the tests run it so)."""

from cdchub.cli import main

main()
