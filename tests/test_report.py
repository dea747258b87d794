"""pipelines.report on the demo dataset, and its parts on made-up metadata."""
import os

import matplotlib.image
import numpy as np

from pipelines.report import PLOT_NAMES, Tally, codebook_health, plot_augmentation
from schemas.manifest import read_counters


def test_the_build_writes_the_report_and_says_where(demo_dataset):
    result, printed = demo_dataset
    report = os.path.join(result.output, 'report.md')
    assert f'report: {report}' in printed.splitlines()
    text = open(report).read()
    for split, stats in result.manifest['splits'].items():
        assert f'| {split} | {stats["songs"]} | {stats["examples"]} |' in text
    assert '| train | guitar |' in text and '## Context' in text
    silent = read_counters(result.output)['RenderFn.windows_silent']
    assert silent == result.counters.get('RenderFn.windows_silent', 0)
    assert f'Windows dropped as silent: {silent}.' in text
    assert f'Errors: {result.manifest["errors"]["total"]}' in text
    assert text.count('| target | ') == text.count('| context | ') == result.manifest['codec']['codebooks']
    augmented = '## Augmentation\n\nNo example carries augmentation metadata.' not in text
    expected = {'splits', 'context', 'tokens'} | ({'augmentation'} if augmented else set())
    for name in PLOT_NAMES:
        path = os.path.join(result.output, PLOT_NAMES[name])
        assert os.path.exists(path) == (name in expected), name
        if name in expected:
            assert f']({PLOT_NAMES[name]})' in text
            image = matplotlib.image.imread(path)
            assert image.shape[0] >= 300 and image.shape[1] >= 800 and os.path.getsize(path) > 10_000
            assert image[..., :3].std() > 0.05    # something is drawn


def test_augmentation_histograms_and_codebook_health(tmp_path):
    tally = Tally()
    rng = np.random.default_rng(0)
    for i in range(40):
        meta = {'split': 'train', 'target_stem': 'guitar', 'duration_seconds': 10.24, 'context_stems': ['drums'],
                'assortment': i % 3, 'augmentation': {'pitch_semitones': rng.uniform(-2, 2),
                                                      'tempo': rng.uniform(0.8, 1.25), 'gain_db': 0.0} if i % 2 else None,
                'distortion': [{'name': 'eq', 'params': {}}], 'some_new_field': 1}
        codes = {'target': rng.integers(0, 16, (2, 50)).astype(np.int16)}
        tally.add(meta, codes, 16)
    assert tally.augmented == 20 and sorted(tally.augmentation) == ['gain_db', 'pitch_semitones', 'tempo']
    assert tally.distortion == {'eq': 40} and tally.assortments == {0: 14, 1: 13, 2: 13}
    path = tmp_path / plot_augmentation(tally, str(tmp_path))
    assert matplotlib.image.imread(str(path)).shape[1] >= 1000
    health = codebook_health(tally.tokens['target'])
    assert [h['used'] for h in health] == [16, 16] and all(0.95 < h['entropy_fraction'] <= 1 for h in health)
    collapsed = codebook_health(np.array([[100] + [0] * 15]))[0]
    assert collapsed['used'] == 1 and collapsed['entropy_bits'] == 0.0 and collapsed['utilisation'] == 1 / 16
