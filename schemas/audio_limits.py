"""What a stem's header may declare before any sample is decoded, so a small file that claims
hours of 384 kHz audio in dozens of channels is an error, not gigabytes of float32."""

MAX_CHANNELS = 64          # beyond 7.1.4 Atmos beds (12) and ambisonics of order 6 (49)
MAX_RATE_HZ = 768_000      # the highest rate converters and DAWs export


class AudioDecodeError(ValueError):
    """The bytes are not audio this project can decode, or not audio worth keeping."""


class ContainerUnreadable(AudioDecodeError):
    """FFmpeg cannot open the file at all (as opposed to a stream in it that fails); ``reason``
    is FFmpeg's message."""

    def __init__(self, name: str, reason: str):
        super().__init__(f'{name}: FFmpeg cannot open it ({reason})')
        self.reason = reason


def check_header(name: str, rate: int, channels: int, seconds: float, max_seconds: float) -> None:
    """Raises AudioDecodeError naming ``name`` when the declared rate, channels or duration
    are out of bounds (a duration of 0 means unknown: decoding stops at the limit instead)."""
    if not 0 < rate <= MAX_RATE_HZ:
        raise AudioDecodeError(f'{name}: declares a sample rate of {rate} Hz (1 to {MAX_RATE_HZ} Hz allowed)')
    if not 0 < channels <= MAX_CHANNELS:
        raise AudioDecodeError(f'{name}: declares {channels} channels (1 to {MAX_CHANNELS} allowed)')
    if seconds > max_seconds:
        raise AudioDecodeError(f'{name}: {seconds:.1f} s is longer than the limit of {max_seconds:g} s')
