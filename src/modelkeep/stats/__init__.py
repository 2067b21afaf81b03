"""Statistics of data: dataset profiles now, the monitoring of predictions next.

- ``profiles``: the profile's result types (standard library only);
- ``accumulators``: running moments and reservoir samples over batches (numpy);
- ``profiling``: ``profile_file``, one streaming pass over a CSV or Parquet file (pyarrow).

Importing this package imports none of them: pyarrow and numpy load only when used.
"""
