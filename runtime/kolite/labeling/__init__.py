"""Batch labelling of files (``kolite label``): streamed, resumable, on local cores or a Ray cluster.

Needs ``pip install 'kolite[label]'`` (pyarrow for Parquet, tqdm for the progress bar) and, for
``engine="ray"``, ``pip install 'kolite[ray]'``. Nothing heavy is imported until a job runs.
"""

from __future__ import annotations

from kolite.labeling.job import LabelJob, label_file
from kolite.labeling.progress import Summary

__all__ = ["LabelJob", "Summary", "label_file"]
