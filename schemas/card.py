"""The dataset card: ``README.md`` at the dataset root, as the Hugging Face Hub reads it.

Its YAML header declares the Parquet config (the default) with the shard files of every split
that has examples, and its features (from the shards' Arrow schema), so
``datasets.load_dataset(<dataset dir>)`` and the same folder pushed to the Hub load the splits
without guessing between the ``.tar`` and ``.parquet`` files. The WebDataset shards get no
config of their own: ``datasets`` infers one builder for a card from its first config's files
(``datasets/load.py``), so a second, WebDataset config would be read by the Parquet builder;
the body says how to read them instead. The body says
what the dataset holds, the codec, how it was built (the command, the version, the counts from
the manifest) and the split policy; the licence is left for the user to fill in.
"""
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from apache_beam.io.filesystems import FileSystems

from schemas.shards import join, write_atomic

CARD_NAME = 'README.md'
TASK_SUMMARIES = {
    'continuation': 'Stem continuation: for each example, EnCodec tokens of a context mix (some stems of a song) '
                    'and of a target stem over the same window, for training a model to play the target part.',
    'separation': 'Source separation: aligned chunks of a mixture and its target stems.',
    'concept': 'Concept fragments: EnCodec tokens and audio of single stems labelled with their instrument or '
               'concept, for MusicGen-style conditioning.',
    'descriptors': 'Descriptors: frame-level audio features of every stem and mix, for descriptor search. An '
                   'example below is a block (one stem\'s or the mix\'s frames); a Parquet row is one frame.',
}


def _bare(dtype: pa.DataType):
    """A type as the value of a Hugging Face ``list:`` (a dtype name, a field list or a nested list)."""
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_fixed_size_list(dtype):
        return {'list': _bare(dtype.value_type)}
    if pa.types.is_struct(dtype):
        return [_field(dtype.field(i)) for i in range(dtype.num_fields)]
    return _dtype(dtype)


def _dtype(dtype: pa.DataType) -> str:
    names = {'double': 'float64', 'float': 'float32', 'halffloat': 'float16', 'large_string': 'large_string',
             'string': 'string', 'bool': 'bool', 'binary': 'binary', 'large_binary': 'large_binary'}
    text = str(dtype)
    return names.get(text, text)


def _field(field: pa.Field) -> dict:
    dtype = field.type
    if pa.types.is_struct(dtype):
        return {'name': field.name, 'struct': _bare(dtype)}
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_fixed_size_list(dtype):
        return {'name': field.name, 'list': _bare(dtype.value_type)}
    return {'name': field.name, 'dtype': _dtype(dtype)}


def features(schema: pa.Schema) -> list:
    """An Arrow schema as the Hugging Face card's ``features`` list."""
    return [_field(schema.field(i)) for i in range(len(schema))]


def _parquet_shards(manifest: dict) -> dict:
    """{split: [Parquet shard paths]} (whatever the task calls the format), splits with examples only."""
    files = {}
    for split, stats in sorted(manifest['splits'].items()):
        paths = [s['path'] for shards in stats['shards'].values() for s in shards if s['path'].endswith('.parquet')]
        if stats['examples'] and paths:
            files[split] = sorted(paths)
    return files


def _has_map(dtype: pa.DataType) -> bool:
    """Whether a type holds an Arrow map, which ``datasets`` has no feature for."""
    if pa.types.is_map(dtype):
        return True
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_fixed_size_list(dtype):
        return _has_map(dtype.value_type)
    if pa.types.is_struct(dtype):
        return any(_has_map(dtype.field(i).type) for i in range(dtype.num_fields))
    return False


def unsupported_columns(schema: pa.Schema) -> list:
    """Columns ``datasets`` cannot load (maps): the card's config leaves them out."""
    return [f.name for f in schema if _has_map(f.type)] if schema is not None else []


def header(manifest: dict, schema: pa.Schema = None) -> dict:
    files = _parquet_shards(manifest)
    config = {'config_name': 'default', 'default': True,
              'data_files': [{'split': split, 'path': paths} for split, paths in files.items()]}
    left_out = unsupported_columns(schema)
    if left_out:
        config['columns'] = [f.name for f in schema if f.name not in left_out]
    document = {'configs': [config] if files else [], 'license': 'other',
                'tags': ['audio', 'music', manifest.get('task', 'continuation')]}
    if schema is not None and files:
        kept = pa.schema([f for f in schema if f.name not in left_out])
        document['dataset_info'] = [{'config_name': 'default', 'features': features(kept)}]
    return document


def command_of(manifest: dict, defaults: dict) -> str:
    """The build command: the options that differ from the parser's defaults."""
    flags = []
    for name, value in sorted(manifest.get('options', {}).items()):
        if name in defaults and defaults[name] == value or value in (None, False, [], ''):
            continue
        if name == 'output':       # the folder the card is in, wherever it was built or moved
            value = '<this folder>'
        flag = '--' + name.replace('_', '-')
        if value is True:
            flags.append(flag)
        elif isinstance(value, list):
            flags += [f'{flag}={v}' for v in value]
        else:
            flags.append(f'{flag}={value}')
    return ' '.join(['python -m pipelines.build'] + flags)


def body(manifest: dict, command: str, version: str, left_out=()) -> str:
    task = manifest.get('task', 'continuation')
    codec = manifest.get('codec')
    lines = [f'# {task} dataset', '', TASK_SUMMARIES.get(task, ''), '']
    lines += ['## Contents', '', '| split | examples | songs | audio (s) |', '|---|---|---|---|']
    for split, stats in sorted(manifest['splits'].items()):
        lines.append(f'| {split} | {stats["examples"]} | {stats["songs"]} | {stats["audio_seconds"]:.1f} |')
    totals = manifest.get('totals', {})
    lines += ['', f'{totals.get("examples", 0)} examples from {totals.get("songs", 0)} songs; '
                  f'{manifest["errors"]["total"]} input errors (listed in `{manifest["errors"]["path"]}`).', '']
    formats = sorted({fmt for stats in manifest['splits'].values() for fmt in stats['shards']})
    lines += [f'Shard formats: {", ".join(formats)}, holding the same examples; `manifest.json` lists every shard '
              'with its bytes and sha256. `datasets.load_dataset("<this folder>")` (or the Hub repository) loads '
              'the Parquet shards, one split each; WebDataset tars are for streaming trainers '
              '(`webdataset.WebDataset`, or `schemas.reader.open_dataset` of stemforge, from disk, S3 or GCS).', '']
    if left_out:
        lines += [f'`datasets` has no feature for Arrow maps, so the config leaves out {", ".join(f"`{c}`" for c in left_out)}; '
                  'pyarrow, pandas, polars and DuckDB read them from the Parquet files.', '']
    if codec:
        lines += ['## Codec', '', f'- name: `{codec["name"]}`', f'- weights: `{codec["weights"]}`',
                  f'- sample rate: {codec["sample_rate_hz"]} Hz, {codec["channels"]} channel(s)',
                  f'- frame rate: {codec["frame_rate"]} Hz', f'- codebooks: {codec["codebooks"]} of '
                  f'{codec["codebook_size"]}', f'- runtime: {codec.get("runtime")} {codec.get("runtime_version", "")}',
                  '']
        if str(codec['weights']).startswith('random'):
            lines += ['**The codes come from RANDOM codec weights: for testing a pipeline, not for training.**', '']
    options = manifest.get('options', {})
    lines += ['## How it was built', '', f'stemforge {version}, source `{manifest.get("source")}`:', '',
              '```', command, '```', '',
              '## Splits', '',
              f'Songs are split by their normalised artist (`--split-ratios={options.get("split_ratios", "")}`, '
              f'`--split-from={options.get("split_from", "")}`), so no song, artist or reserve donor is in two '
              'splits; validation and test are ' + ('augmented and distorted like train.'
                                                     if manifest.get('augment_eval') else
                                                     'neither augmented nor distorted.'), '',
              '## Licence', '', 'Left for the dataset\'s owner: set `license:` in the header above to the '
              'licence the source audio allows.', '']
    return '\n'.join(lines)


def package_version() -> str:
    try:
        from importlib.metadata import version
        return version('stemforge')
    except Exception:   # noqa: BLE001 - run from a checkout that was not installed
        return 'unknown'


def _schema(root: str, manifest: dict):
    for paths in _parquet_shards(manifest).values():
        with FileSystems.open(join(root, paths[0])) as handle:   # the footer only, not the shard
            return pq.ParquetFile(handle).schema_arrow
    return None


def write_card(root: str, manifest: dict, defaults: dict, version: str) -> str:
    """Writes ``README.md`` at the dataset root; returns its path."""
    schema = _schema(root, manifest)
    document = yaml.safe_dump(header(manifest, schema), sort_keys=False, allow_unicode=True)
    text = (f'---\n{document}---\n\n'
            f'{body(manifest, command_of(manifest, defaults), version, unsupported_columns(schema))}')
    path = join(root, CARD_NAME)
    write_atomic(path, text.encode('utf-8'))
    return path
