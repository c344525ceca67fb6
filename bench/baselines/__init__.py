"""Minimal reference implementations (seed design, raw ceiling) the benchmark compares the platform against."""
