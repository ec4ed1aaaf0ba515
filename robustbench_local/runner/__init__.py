"""Plan, run (resumably) and aggregate evaluations."""
from .execute import Task, aggregate, plan, resolve_options, run_tasks
from .spec import EvalSpec
from .store import RunStore, atomic_write, write_json

__all__ = ["EvalSpec", "RunStore", "Task", "aggregate", "atomic_write", "plan", "resolve_options", "run_tasks",
           "write_json"]
