"""`keeper` command. The bots land with issue 6; until then it says so instead of pretending."""

import sys


def main(argv: list[str] | None = None) -> int:
    print("keeper: no bots are built yet (oracle, funding and liquidator keepers are issue 6)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
