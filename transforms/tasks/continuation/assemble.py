"""AssembleExamples: join each example's skeleton with the codes of its context and
target windows (per song), yielding finished Examples."""
import dataclasses

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas.continuation import Example
from transforms.failures import FAILED, MissingCodes, contained, failure


class AttachCodesFn(beam.DoFn):
    def __init__(self):
        self.examples_missing_codes = Metrics.counter(self.__class__, 'examples_missing_codes')
        self.examples_assembled = Metrics.counter(self.__class__, 'examples_assembled')

    @contained('assemble', lambda element: element[0])
    def process(self, element):
        song_id, grouped = element
        encoded = {}
        for part in grouped['encoded']:   # a waveform can arrive in parts (Render's memory budget)
            if part.waveform_id in encoded:
                whole = encoded[part.waveform_id]
                part = dataclasses.replace(whole, codes={**whole.codes, **part.codes},
                                           scales={**whole.scales, **part.scales},
                                           audio_flac={**whole.audio_flac, **part.audio_flac})
            encoded[part.waveform_id] = part
        metas = list(grouped['examples'])
        has = lambda waveform, window: waveform is not None and window in waveform.codes   # noqa: E731
        missing = [m for m in metas if not (has(encoded.get(m.context_waveform_id), m.chunk_index)
                                            and has(encoded.get(m.target_waveform_id), m.chunk_index))]
        if missing:   # a waveform of the song failed upstream: the song is dropped whole
            self.examples_missing_codes.inc(len(missing))
            yield failure('assemble', song_id, MissingCodes(
                f'{len(missing)} of {len(metas)} example(s) lack the codes of a waveform (window '
                f'{missing[0].chunk_index} of {missing[0].target_waveform_id}); the song is left out'), song_id)
            return
        for meta in metas:
            context, target = encoded[meta.context_waveform_id], encoded[meta.target_waveform_id]
            window = meta.chunk_index
            meta = dataclasses.replace(meta, context_scale=context.scales.get(window),
                                       target_scale=target.scales.get(window))
            self.examples_assembled.inc()
            yield Example(meta=meta, context_codes=context.codes[window], target_codes=target.codes[window],
                          context_flac=context.audio_flac.get(window), target_flac=target.audio_flac.get(window))


class AssembleExamples(beam.PTransform):
    """(examples: (song_id, ExampleMeta), encoded: EncodedWaveform) -> Example (``examples``) and
    ``failed`` (songs with examples lacking codes)."""

    def expand(self, inputs):
        examples, encoded = inputs
        return ({'examples': examples,
                 'encoded': encoded | 'KeyBySong' >> beam.Map(lambda w: (w.song_id, w))}
                | 'GroupBySong' >> beam.CoGroupByKey()
                | 'AttachCodes' >> beam.ParDo(AttachCodesFn()).with_outputs(FAILED, main='examples'))
