"""The benchmark grid (``benchmarks/run.py``) and its report (``benchmarks/report.py``)."""
