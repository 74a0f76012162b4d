"""peestore test suite."""
