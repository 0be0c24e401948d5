"""Load tests for sneakerd: real server processes on loopback, bounded runs, one-screen reports.

Run `python -m loadtest --help` from the repository root.
"""
