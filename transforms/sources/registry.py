"""The sources ``--source`` chooses from, and the options every source shares.

Each source is a PTransform from the pipeline's start to ``songs`` (SongRef) and
``failed``; its own flags live in its module.
"""
from apache_beam.options.pipeline_options import PipelineOptions

from transforms.sources.folders import ReadAudioFolders
from transforms.sources.moisesdb import ReadMoisesDb
from transforms.sources.musdb import ReadMusdb
from transforms.sources.slakh import ReadSlakh
from transforms.sources.stems import ReadStemArchives

SOURCES = {
    'stems': ReadStemArchives,
    'slakh': ReadSlakh,
    'musdb': ReadMusdb,
    'moisesdb': ReadMoisesDb,
    'folders': ReadAudioFolders,
}


class SourceOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--source', default='stems', choices=list(SOURCES),
                            help='Input layout. stems: <input>/<artist>/<song>.zip or <artist>/<song>/ folders '
                                 'of stems; slakh: Slakh2100/BabySlakh track folders; musdb: MUSDB18 .stem.mp4 '
                                 'or MUSDB18-HQ wav folders; moisesdb: MoisesDB track folders; folders: '
                                 '<input>/<label>/<audio file>, one whole-mix song per file. Default: stems.')
        parser.add_argument('--input', default=None,
                            help='Input folder or URL (local path, s3://, gs://). Required unless --demo.')
        parser.add_argument('--max-uncompressed-mb', type=float, default=2048,
                            help='Largest decompressed size of one song (all its members), in MiB. '
                                 'Default: 2048.')


def source_class(name: str):
    """The source PTransform class of ``--source``.

    Raises:
        ValueError: an unknown source.
    """
    if name not in SOURCES:
        raise ValueError(f'--source: unknown source {name!r}; choose from {list(SOURCES)}')
    return SOURCES[name]


def check_source_options(args) -> None:
    """Rejects option combinations the chosen source cannot honour.

    Raises:
        ValueError: ``--split-from=source`` on a source without its own splits, or
            ``--fill-missing=reserve`` on a source whose songs cannot take donor stems.
    """
    cls = source_class(args.source)
    if getattr(args, 'split_from', 'hash') == 'source' and not cls.HAS_SPLITS:
        raise ValueError(f'--split-from=source: --source={args.source} has no splits of its own '
                         '(only slakh and musdb have); use the default hash split')
    if getattr(args, 'fill_missing', 'skip') == 'reserve' and not cls.FILLABLE:
        raise ValueError(f'--fill-missing=reserve: --source={args.source} songs cannot take donor stems '
                         '(use slakh, musdb or moisesdb)')
