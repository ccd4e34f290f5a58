"""Shared by the benchmarks: per-frame samples and their statistics, report files and plots, the peer `fer`."""
