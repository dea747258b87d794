"""Tasks: what a loaded, split song becomes (``--task``). One module per task; see task.py."""
