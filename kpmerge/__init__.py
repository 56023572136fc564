"""kpmerge: merge and combine human-pose keypoint datasets offline."""

__version__ = "0.1.0"
