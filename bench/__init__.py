"""Benchmarks: our platform side by side with the seed's design and a raw ceiling (`python -m bench`)."""
