"""Online experiments: hashing assignment, exposure attribution, statistics, reports and a
simulator with a known true effect (docs/experiments.md)."""
