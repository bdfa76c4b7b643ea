"""Runs the client's tests with unittest and ends with one plain summary line
("python-client: N passed, N failed, N skipped") that CI logs can be read by.

    python3 tests/run.py [-q] [pattern]      # pattern: test module glob, default test_*.py
"""

import os
import sys
import unittest
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv: List[str]) -> int:
    quiet = "-q" in argv
    patterns = [arg for arg in argv if not arg.startswith("-")] or ["test_*.py"]
    sys.path.insert(0, HERE)
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for pattern in patterns:
        suite.addTests(loader.discover(HERE, pattern=pattern, top_level_dir=HERE))
    result = unittest.TextTestRunner(verbosity=1 if quiet else 2).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print("python-client: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
