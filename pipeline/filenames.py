"""The names of the files the stages write and read each other's outputs by, in one place
(dvc.yaml spells the same names; tests/test_dvc_pipeline.py keeps the two in step).

A leaf module, like pipeline.errors and pipeline.protocol. The checkpoint names live with
the checkpoint format in surrogates.checkpoints (BEST_CHECKPOINT, LAST_CHECKPOINT,
IMPORTED_CHECKPOINT), because `surrogates.load(folder)` needs them too.
"""

# a data set folder (simulate, ingest, shard)
MANIFEST = "manifest.json"
SUMMARY = "summary.json"  # simulate: spike-rate statistics of the runs

# a training run (train)
TRAIN_LOG = "train_log.csv"
TRAIN_METRICS = "train_metrics.json"

# an imported reference model (import-elm)
IMPORT_RECORD = "import.json"

# an evaluation (evaluate)
EVAL_METRICS = "metrics.json"  # what `dvc metrics show` tabulates
EVAL_CONTEXT = "evaluation.json"  # provenance, protocol and definitions
ROC_CSV = "roc.csv"
PREDICTIONS = "predictions.h5"
ROC_FIGURE = "roc.png"


def traces_figure(k: int) -> str:
    """The k-th trace figure of an evaluation: traces.png, traces_1.png, ..."""
    return "traces.png" if k == 0 else f"traces_{k}.png"


# the ELM-network sweep (sweep)
SWEEP_SETTINGS = "sweep.json"
SWEEP_POINTS = "points.csv"
SWEEP_MARKDOWN = "sweep.md"
SWEEP_FRONTIER = "frontier.png"


def plane_figure(budget: int) -> str:
    """The sweep's (N, k_e) plane of one budget."""
    return f"plane_{budget}.png"


# the report (report)
REPORT_MARKDOWN = "report.md"
REPORT_HTML = "report.html"
REPORT_AUC_FIGURE = "auc_vs_params.png"
REPORT_ROC_FIGURE = "roc.png"
REPORT_TRACES_FIGURE = "traces.png"
REPORT_SWEEP_PREFIX = "sweep_"  # the sweep's figures copied beside the report: sweep_frontier.png
