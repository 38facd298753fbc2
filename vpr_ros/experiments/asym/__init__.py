"""The AsymVPR comparison of `vpr-ros train asym`: systems trained side by side, held-out
recall, paired intervals, cost growth, floors and the report."""
