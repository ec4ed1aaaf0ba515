"""robustbench-local: robustness evaluation for PyTorch image classifiers."""
from .api import evaluate
from .data import DataSource, load_data
from .models import Classifier, load_model
from .results import RunResult, load_run

__version__ = "0.1.0"
__all__ = ["Classifier", "DataSource", "RunResult", "evaluate", "load_data", "load_model", "load_run"]
