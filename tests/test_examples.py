"""The training example in examples/ runs on the demo dataset and learns."""
import importlib.util
import math
import os

from schemas.reader import describe

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'examples', 'train_continuation.py')


def _example():
    spec = importlib.util.spec_from_file_location('train_continuation', EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_training_loop_learns_on_the_demo_dataset(demo_dataset):
    root = demo_dataset[0].output
    result = _example().train(root, steps=12, batch_size=4, frames=32, log_every=0)
    chance = math.log(describe(root).codebook_size)
    assert len(result['losses']) == 12 and all(math.isfinite(v) for v in result['losses'])
    assert result['losses'][-1] < result['losses'][0] < chance + 1.0
    assert result['validation_loss'] is not None and math.isfinite(result['validation_loss'])
