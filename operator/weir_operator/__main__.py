"""`python -m weir_operator`, same as `weir operator`."""

from weir_operator.cli import main

main()
