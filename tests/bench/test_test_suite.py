"""The test-suite bench reads pytest's outcome, failures included."""

from bench.test_suite import outcome_of


def test_the_last_summary_line_is_the_outcome_and_failures_are_kept():
    quiet = "....\n655 passed in 150.21s (0:02:30)\n"
    assert outcome_of(quiet, 0) == "655 passed in 150.21s (0:02:30)"
    failing = "F...\n=== short test summary info ===\nFAILED x\n3 failed, 652 passed in 150.2s (0:02:30)\n"
    assert outcome_of(failing, 1) == "3 failed, 652 passed in 150.2s (0:02:30)"
    assert outcome_of("make: *** [test-fast] Error 2\n", 2) == "exit 2"
