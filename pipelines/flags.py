"""Flags that no parser knows are errors naming the closest valid flag (Beam alone warns and drops
them: ``--target_stem=guitar`` would build every target). Shared by the build and the tools."""
import argparse
import difflib


class UnknownFlag(ValueError):
    """A flag that neither the command nor Beam knows."""


def parse_known_flags(parser: argparse.ArgumentParser, argv, skip=()):
    """``(namespace of parser's flags, the remaining flags)``; every remaining flag is one a Beam
    PipelineOptions class declares (``--runner``, ``--s3_endpoint_url``, ...).

    Raises:
        UnknownFlag: a flag neither knows, or a stray value.
    """
    args, rest = parser.parse_known_args(argv)
    if rest:
        beam_parser = _beam_parser(skip)
        _, unknown = beam_parser.parse_known_args(rest)
        if unknown:
            raise UnknownFlag(_message(unknown[0], parser.prog, _names(parser) | _names(beam_parser)))
    return args, rest


def parse_tool_args(parser: argparse.ArgumentParser, argv):
    """A tool's flags (verify, report, query); Beam's filesystem flags (``--s3_endpoint_url``, ...)
    configure ``s3://`` and ``gs://`` access. An unknown flag exits with status 2, as argparse does."""
    try:
        args, rest = parse_known_flags(parser, argv)
    except UnknownFlag as e:
        parser.error(str(e))
    if rest:
        from apache_beam.io.filesystems import FileSystems
        from apache_beam.options.pipeline_options import PipelineOptions
        FileSystems.set_options(PipelineOptions(rest))
    return args


def _beam_parser(skip) -> argparse.ArgumentParser:
    """The parser Beam builds from every PipelineOptions class (as PipelineOptions.get_all_options)."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser
    parser, seen = _BeamArgumentParser(allow_abbrev=False), set()
    for options_class in PipelineOptions.__subclasses__():
        if str(options_class) not in seen and options_class not in skip:
            seen.add(str(options_class))
            options_class._add_argparse_args(parser)
    return parser


def _names(parser: argparse.ArgumentParser) -> set:
    return {flag for action in parser._actions for flag in action.option_strings if flag.startswith('--')}


def _message(argument: str, prog: str, valid: set) -> str:
    if not argument.startswith('-'):
        return f'unexpected argument {argument!r} (flags take their value as --flag=value or --flag value)'
    flag = argument.split('=', 1)[0]
    spelled = {name.replace('_', '-'): name for name in valid}
    close = difflib.get_close_matches(flag.replace('_', '-'), list(spelled), n=1, cutoff=0.6)
    return f'unknown flag {flag}' + (f'; did you mean {spelled[close[0]]}?' if close else f'; {prog} --help lists them')
