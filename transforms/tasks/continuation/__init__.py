"""``--task=continuation`` (the default): context tokens -> target tokens. Its stages: plan.py
(PlanExamples), render.py (Render), augment.py and distort.py (what Render applies), assemble.py
(AssembleExamples); task.py joins them with the shared Chunk and EncodeChunks."""
