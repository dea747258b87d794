"""``stemforge build|verify|report|query ...``: one command for the pipeline's entry points, the
same flags as ``python -m pipelines.build`` (and ``.verify``, ``.report``, ``.query``)."""
import sys

COMMANDS = {
    'build': ('pipelines.build', 'build a dataset (sources, tasks, runners: stemforge build --help)'),
    'verify': ('pipelines.verify', 'check a dataset against its manifest; decode examples back to audio'),
    'report': ('pipelines.report', 'write REPORT.md with plots of a dataset'),
    'query': ('pipelines.query', 'the segments of a descriptors dataset nearest to a clip'),
}


def usage() -> str:
    lines = ['usage: stemforge {' + ','.join(COMMANDS) + '} [flags]', '       stemforge --version', '']
    lines += [f'  {name:<8} {about}' for name, (_, about) in COMMANDS.items()]
    return '\n'.join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(usage())
        return 0 if argv else 2
    if argv[0] == '--version':
        from runners.container import package_version
        print(f'stemforge {package_version()}')
        return 0
    if argv[0] not in COMMANDS:
        import difflib
        close = difflib.get_close_matches(argv[0], list(COMMANDS), n=1)
        print(f'stemforge: unknown command {argv[0]!r}' + (f'; did you mean {close[0]}?' if close else ''),
              file=sys.stderr)
        print(usage(), file=sys.stderr)
        return 2
    import importlib
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:])


if __name__ == '__main__':
    sys.exit(main())
