"""The optional libraries a build's flags call for, checked before the pipeline starts: a missing
one is an error naming the flag that needs it and the install command, not a failure on a worker
an hour in. (PyAV, pedalboard, ONNX Runtime and OpenVINO are install requirements; a broken or
partial environment still gets the same message.)"""
import importlib



def _continuation(args) -> bool:
    return getattr(args, 'task', 'continuation') == 'continuation'


def _distorts(args) -> bool:
    return _continuation(args) and (getattr(args, 'distort_p', 0) or 0) > 0


def _effects(args) -> bool:
    return _distorts(args) or (_continuation(args) and (getattr(args, 'augmentations', 0) or 0) > 0)


# (does the build need it: args -> bool, module, the flag that needs it, what to pip install)
TOOLS = (
    (lambda args: getattr(args, 'report', False), 'matplotlib', '--report', 'matplotlib'),
    (lambda args: getattr(args, 'codec_backend', None) == 'encodec', 'encodec', '--codec-backend=encodec',
     'encodec (and a torchaudio of the same minor version as torch)'),
    (lambda args: getattr(args, 'codec_runtime', None) == 'onnxruntime', 'onnxruntime',
     '--codec-runtime=onnxruntime', 'onnxruntime'),
    (lambda args: getattr(args, 'codec_runtime', None) in ('openvino', 'auto'), 'openvino',
     '--codec-runtime=openvino (auto on CPU)', 'openvino'),
    (lambda args: _distorts(args) and 'lossy' in str(getattr(args, 'distortions', '')).split(','), 'av',
     '--distortions with lossy', 'av'),
    (_effects, 'pedalboard', '--augmentations / --distort-p', 'pedalboard'),
)


def missing_tools(args) -> list:
    """One message per library the flags need that does not import."""
    problems = []
    for needed, module, flag, install in TOOLS:
        if not needed(args):
            continue
        try:
            importlib.import_module(module)
        except Exception as e:    # ImportError, or a native library that fails to load (OSError, ...)
            problems.append(f'{flag} needs {module}, which does not import here ({type(e).__name__}: {e}); '
                            f'pip install {install}')
    return problems


def check_tools(args) -> None:
    """Raises ValueError listing every missing library, before anything is built."""
    problems = missing_tools(args)
    if problems:
        raise ValueError('missing libraries:\n  ' + '\n  '.join(problems))
