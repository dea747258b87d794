"""The tasks ``--task`` chooses from. Each task's own flags live in its module."""
from transforms.tasks.concept import ConceptTask
from transforms.tasks.continuation.task import ContinuationTask
from transforms.tasks.descriptors import DescriptorsTask
from transforms.tasks.separation import SeparationTask

TASKS = {task.NAME: task for task in (ContinuationTask, SeparationTask, DescriptorsTask, ConceptTask)}


def task_class(name: str):
    """The Task class of ``--task``.

    Raises:
        ValueError: an unknown task.
    """
    if name not in TASKS:
        raise ValueError(f'--task: unknown task {name!r}; choose from {list(TASKS)}')
    return TASKS[name]
