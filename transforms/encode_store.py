"""The encoder's resume store: each encoded segment's codes (and scales) as a .npz in the work
folder, reused by a later run of the same build (--resume), never by the run that wrote it."""
import io

import numpy as np
from apache_beam.io.filesystems import FileSystems

from schemas.records import EncodedWaveform
from schemas.shards import write_atomic


def segment_file(cache_root: str, song_id: str, waveform_id: str, segment) -> str:
    """Where a segment's codes are stored for --resume."""
    return FileSystems.join(cache_root, f'{song_id}--{waveform_id}--{segment.windows[0]}-{len(segment.windows)}.npz')


def stored_before(path: str, started: float) -> bool:
    """Whether the segment file ``path`` exists and was stored before ``started`` (the time the graph
    was built): only an earlier run's files are reused. A file this run writes is never read back by
    it, so a task that runs again (its worker was lost) splits its segments as its first attempt
    did, and a part already handed downstream is neither lost nor doubled."""
    from apache_beam.io.filesystem import BeamIOError
    try:
        found = FileSystems.match([path])[0].metadata_list
    except (BeamIOError, OSError):
        return False
    return bool(found) and found[0].last_updated_in_seconds < started


def save_encoded(path: str, encoded: EncodedWaveform) -> None:
    """Stores a waveform part's codes (and scales) as .npz, without pickle, atomically."""
    arrays = {f'codes_{w}': c for w, c in encoded.codes.items()}
    arrays.update({f'scale_{w}': np.float64(v) for w, v in encoded.scales.items()})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_atomic(path, buf.getvalue())


def load_encoded(path: str, song_id: str, waveform_id: str) -> EncodedWaveform:
    with FileSystems.open(path) as handle:
        data = np.load(io.BytesIO(handle.read()), allow_pickle=False)
    parts = {k: k.split('_', 1) for k in data.files}
    return EncodedWaveform(
        song_id=song_id, waveform_id=waveform_id,
        codes={int(w): data[k] for k, (kind, w) in parts.items() if kind == 'codes'},
        scales={int(w): float(data[k]) for k, (kind, w) in parts.items() if kind == 'scale'})
