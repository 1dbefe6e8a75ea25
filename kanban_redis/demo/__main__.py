import sys

from .story import main

if __name__ == "__main__":
    sys.exit(main())
