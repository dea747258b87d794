"""AssembleExamples: join each example's skeleton with the codes of its context and
target windows (per song), yielding finished Examples."""
import dataclasses

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas.records import Example


class AttachCodesFn(beam.DoFn):
    def __init__(self):
        self.examples_missing_codes = Metrics.counter(self.__class__, 'examples_missing_codes')
        self.examples_assembled = Metrics.counter(self.__class__, 'examples_assembled')

    def process(self, element):
        _, grouped = element
        encoded = {}
        for part in grouped['encoded']:   # a waveform can arrive in parts (Render's memory budget)
            if part.waveform_id in encoded:
                whole = encoded[part.waveform_id]
                part = dataclasses.replace(whole, codes={**whole.codes, **part.codes},
                                           scales={**whole.scales, **part.scales},
                                           audio_flac={**whole.audio_flac, **part.audio_flac})
            encoded[part.waveform_id] = part
        for meta in grouped['examples']:
            context, target = encoded.get(meta.context_waveform_id), encoded.get(meta.target_waveform_id)
            window = meta.chunk_index
            if context is None or target is None or window not in context.codes or window not in target.codes:
                self.examples_missing_codes.inc()   # its waveform failed upstream and is in errors/
                continue
            meta = dataclasses.replace(meta, context_scale=context.scales.get(window),
                                       target_scale=target.scales.get(window))
            self.examples_assembled.inc()
            yield Example(meta=meta, context_codes=context.codes[window], target_codes=target.codes[window],
                          context_flac=context.audio_flac.get(window), target_flac=target.audio_flac.get(window))


class AssembleExamples(beam.PTransform):
    """(examples: (song_id, ExampleMeta), encoded: EncodedWaveform) -> Example."""

    def expand(self, inputs):
        examples, encoded = inputs
        return ({'examples': examples,
                 'encoded': encoded | 'KeyBySong' >> beam.Map(lambda w: (w.song_id, w))}
                | 'GroupBySong' >> beam.CoGroupByKey()
                | 'AttachCodes' >> beam.ParDo(AttachCodesFn()))
