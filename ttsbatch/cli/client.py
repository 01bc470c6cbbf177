"""Commands of the API: ``submit``, ``jobs``, ``status``, ``fetch`` (clients), ``api`` and ``beat`` (servers).

The clients talk to ``--server`` (``TTSBATCH_SERVER``, default
``http://127.0.0.1:8000``) with the key of ``TTSBATCH_API_KEY``. ``status``
without a server falls back to the cluster's own ``status`` (Redis and the
store). :data:`COMMANDS` lists them for :mod:`ttsbatch.cli`.

The options of the finished audio (:func:`audio_options`: format, loudness,
bit rate, chapter files, tags, cover) are defined here once, for ``submit``
and for ``synth`` (:mod:`ttsbatch.cli.main`, which imports this module).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast, get_args

import click
from pydantic import ValidationError

from ttsbatch.cli.costs import cost_options, estimate_lines
from ttsbatch.errors import ConfigError
from ttsbatch.models import (
    MAX_COVER_BYTES,
    AudioFormat,
    BookInfo,
    Cover,
    Estimate,
    JobOptions,
    LoudnessPreset,
    ReadAlongUnit,
)
from ttsbatch.settings import ENGINES, Settings

DEFAULT_SERVER = "http://127.0.0.1:8000"

_server = click.option(
    "--server",
    envvar="TTSBATCH_SERVER",
    default=DEFAULT_SERVER,
    show_default=True,
    help="API base URL [TTSBATCH_SERVER].",
)
_key = click.option(
    "--key", envvar="TTSBATCH_API_KEY", help="API key [TTSBATCH_API_KEY].", show_envvar=False
)


def _client(server: str, key: str | None) -> Any:
    from ttsbatch.client import ApiClient  # noqa: PLC0415 - keeps --help fast

    if not key:
        raise ConfigError("no API key: set TTSBATCH_API_KEY (or pass --key)")
    return ApiClient(server, key)


# -- the finished audio -----------------------------------------------------------------------

#: ``--format``'s choices: every format the models know.
AUDIO_FORMATS: Final = tuple(f.value for f in AudioFormat)
_PRESETS: Final[tuple[str, ...]] = get_args(LoudnessPreset)
_LOUDNESS_HELP: Final = f"{', '.join(_PRESETS)}, or a target in LUFS from -40 to -5 (e.g. -20)"
#: A cover's type, told by its first bytes (its name is not trusted).
#: The book's tags the commands take (the rest of BookInfo is the source's).
_INFO_OPTIONS: Final = ("title", "author", "narrator", "album", "year")


class LoudnessType(click.ParamType[LoudnessPreset | float]):
    """``--loudness``: a preset (audiobook, podcast, ebu, off) or a target in LUFS."""

    name = "loudness"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> LoudnessPreset | float:
        """Return the preset or the target; a usage error names the allowed values."""
        if isinstance(value, float):
            return value
        text = str(value).strip().lower()
        if text in _PRESETS:
            return cast(LoudnessPreset, text)
        try:
            target = float(text)
        except ValueError:
            self.fail(f"{value!r} is not a loudness: use {_LOUDNESS_HELP}", param, ctx)
        try:  # the range is the job options' (JobOptions.loudness_target)
            JobOptions(loudness=target).loudness_target()
        except ValueError as exc:
            self.fail(f"{exc}: use {_LOUDNESS_HELP}", param, ctx)
        return target


class CoverType(click.ParamType[Cover]):
    """``--cover FILE``: a JPEG or PNG image (told by its bytes), read into a :class:`Cover`."""

    name = "file"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> Cover:
        """Read the image; a usage error names the file if it is unreadable or no JPEG/PNG."""
        if isinstance(value, Cover):
            return value
        path = Path(str(value))
        try:
            with path.open("rb") as image:
                data = image.read(MAX_COVER_BYTES + 1)
        except OSError as exc:
            self.fail(f"{path}: cannot read it ({exc.strerror or exc})", param, ctx)
        if len(data) > MAX_COVER_BYTES:
            self.fail(f"{path}: larger than 20 MiB: give a smaller image", param, ctx)
        cover = Cover.sniff(data)
        if cover is None:
            self.fail(f"{path}: not a JPEG or PNG image: give one of those", param, ctx)
        return cover


@dataclass(frozen=True, slots=True)
class AudioChoice:
    """The finished audio a command asks for: format, mastering, chapter files, tags, cover."""

    audio_format: AudioFormat = AudioFormat.WAV
    loudness: LoudnessPreset | float | None = None
    bitrate_kbps: int | None = None
    split_chapters: bool = False
    info: BookInfo = field(default_factory=BookInfo)
    cover: Cover | None = None
    read_along: bool = False
    read_along_unit: ReadAlongUnit = "sentence"

    def job_options(self) -> dict[str, object]:
        """Return the :class:`~ttsbatch.models.JobOptions` fields of this choice."""
        return {
            "audio_format": self.audio_format,
            "loudness": self.loudness,
            "bitrate_kbps": self.bitrate_kbps,
            "split_chapters": self.split_chapters,
            "info": self.info,
            "cover_sha256": hashlib.sha256(self.cover.data).hexdigest() if self.cover else None,
            "read_along": self.read_along,
            "read_along_unit": self.read_along_unit,
        }

    def request_fields(self) -> dict[str, object]:
        """Return the API's job fields of this choice (those given); the cover is not one."""
        info = self.info.model_dump(exclude_none=True)
        return {
            "audio_format": self.audio_format.value,
            "loudness": self.loudness,
            "bitrate_kbps": self.bitrate_kbps,
            "split_chapters": True if self.split_chapters else None,
            "info": info or None,
            "read_along": True if self.read_along else None,
            "read_along_unit": self.read_along_unit if self.read_along else None,
        }


def _audio_choice(values: dict[str, Any]) -> AudioChoice:
    fmt = AudioFormat(values["audio_format"])
    if not fmt.encoded:
        given = [
            f"--{name}" for name in ("bitrate", "split-chapters") if values[name.replace("-", "_")]
        ]
        if given:
            raise click.UsageError(
                f"{' and '.join(given)} {'needs' if len(given) == 1 else 'need'} an encoded"
                f" format: --format one of"
                f" {', '.join(f.value for f in AudioFormat if f.encoded)}"
            )
    if values["read_along_unit"] and not values["read_along"]:
        raise click.UsageError("--read-along-unit needs --read-along")
    if fmt is AudioFormat.FLAC and values["bitrate"]:
        raise click.UsageError("--bitrate does not apply to flac (lossless): leave it out")
    try:
        info = BookInfo(**{name: values[name] for name in _INFO_OPTIONS if values[name]})
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise click.BadParameter(problem["msg"], param_hint=f"--{problem['loc'][0]}") from None
    return AudioChoice(
        audio_format=fmt,
        loudness=values["loudness"],
        bitrate_kbps=values["bitrate"],
        split_chapters=values["split_chapters"],
        info=info,
        cover=values.get("cover"),
        read_along=bool(values["read_along"]),
        read_along_unit=values["read_along_unit"] or "sentence",
    )


def audio_options(*, cover: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the finished audio's options to a command; it receives them as ``audio`` (:class:`AudioChoice`).

    Args:
        cover: Whether the command takes ``--cover FILE``.
    """
    options = [
        click.option(
            "--format",
            "audio_format",
            type=click.Choice(AUDIO_FORMATS),
            default=AudioFormat.WAV.value,
            show_default=True,
            help="wav or pcm (raw); m4b, mp3, opus or flac (mastered, with chapters, tags"
            " and cover).",
        ),
        click.option(
            "--loudness",
            type=LoudnessType(),
            metavar="PRESET|LUFS",
            help=f"Master to {_LOUDNESS_HELP} [audiobook for encoded formats, off for wav/pcm].",
        ),
        click.option(
            "--bitrate",
            type=click.IntRange(8, 320),
            metavar="KBPS",
            help="Bit rate of m4b, mp3 or opus [64, 64, 32].",
        ),
        click.option(
            "--split-chapters", is_flag=True, help="Also write each chapter as a file of its own."
        ),
        click.option(
            "--read-along",
            is_flag=True,
            help="Also write NAME.epub: an EPUB 3 whose text highlights as the audio plays"
            " (Media Overlays).",
        ),
        click.option(
            "--read-along-unit",
            type=click.Choice(["sentence", "word"]),
            help="What the read-along book highlights [sentence].",
        ),
        click.option("--title", help="Title tag [the source's, else the file's name]."),
        click.option("--author", help="Author tag [the source's]."),
        click.option("--narrator", help="Narrator tag."),
        click.option("--album", help="Album tag [the title]."),
        click.option("--year", help="Year tag [the source's]."),
    ]
    if cover:
        options.append(
            click.option(
                "--cover",
                type=CoverType(),
                help="Cover image, JPEG or PNG [the source's, e.g. an EPUB's].",
            )
        )
    names = (
        "audio_format",
        "loudness",
        "bitrate",
        "split_chapters",
        "read_along",
        "read_along_unit",
        *_INFO_OPTIONS,
        "cover",
    )

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def with_audio(**params: Any) -> Any:
            values = {name: params.pop(name, None) for name in names}
            return command(audio=_audio_choice(values), **params)

        for option in reversed(options):
            with_audio = option(with_audio)
        return with_audio

    return decorate


# -- the commands ------------------------------------------------------------------------------


def _tags(values: tuple[str, ...]) -> dict[str, str]:
    tags = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{value!r}: write key=value", param_hint="--tag")
        tags[name] = text
    return tags


def _follow(api: Any, job_id: str) -> dict[str, Any]:
    from rich.progress import Progress  # noqa: PLC0415 - keeps --help fast

    final: dict[str, Any] = {}
    with Progress(transient=True) as bar:
        task = bar.add_task(f"job {job_id}", total=None)
        for _event, job in api.events(job_id):
            progress = job["progress"]
            bar.update(
                task,
                total=progress["chunks_total"],
                completed=progress["chunks_done"],
                description=f"job {job_id} {job['status']}",
            )
            final = job
    return final


@click.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@_server
@_key
@click.option("--name", help="Job name.")
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    help="espeak, together or openai; the server's default engine (TTSBATCH_DEFAULT_ENGINE) if not given.",
)
@click.option("--voice", help="Engine voice.")
@click.option("--model", help="Provider model.")
@audio_options()
@cost_options
@click.option("--tag", "tags", multiple=True, help="key=value; repeat for more.")
@click.option("--webhook-url", help="Called when the job succeeds or fails.")
@click.option("--wait", is_flag=True, help="Follow the job to its end with a progress bar.")
@click.option(
    "-o", "--output", "outdir", type=click.Path(path_type=Path), help="With --wait: download here."
)
def submit(  # noqa: PLR0917 - click passes every option of a command as a parameter
    files: tuple[Path, ...],
    server: str,
    key: str | None,
    name: str | None,
    engine: str | None,
    voice: str | None,
    model: str | None,
    audio: AudioChoice,
    no_cache: bool,
    dry_run: bool,
    preview: float | None,
    max_cost: float | None,
    max_billed_chars: int | None,
    tags: tuple[str, ...],
    webhook_url: str | None,
    wait: bool,
    outdir: Path | None,
) -> None:
    """Submit FILES (txt, md, html, epub) as one job to the API; print its id.

    With --dry-run, print what the server says the job would cost instead.
    """
    with _client(server, key) as api:
        answer = api.submit_files(
            list(files),
            name=name,
            engine=engine,
            voice=voice,
            model=model,
            tags=_tags(tags) or None,
            webhook_url=webhook_url,
            cover=None
            if audio.cover is None
            else (f"cover.{audio.cover.suffix}", audio.cover.data),
            cache=False if no_cache else None,
            dry_run=True if dry_run else None,
            preview_seconds=preview,
            max_cost=max_cost,
            max_billed_chars=max_billed_chars,
            **audio.request_fields(),
        )
        if dry_run:
            for line in estimate_lines(Estimate.model_validate(answer)):
                click.echo(line)
            return
        job = answer
        click.echo(job["id"])
        if not wait:
            return
        final = _follow(api, job["id"])
        click.echo(f"job {job['id']}: {final.get('status')}")
        if final.get("status") != "succeeded":
            raise click.ClickException(final.get("error") or "the job did not succeed")
        if outdir is not None:
            for path in api.download(job["id"], outdir):
                click.echo(f"  {path}")


@click.command()
@_server
@_key
@click.option("--status", "status_filter", help="Only jobs in this status.")
@click.option("--tag", "tags", multiple=True, help="key=value; all must match.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def jobs(  # noqa: PLR0917 - click passes every option of a command as a parameter
    server: str,
    key: str | None,
    status_filter: str | None,
    tags: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """List your jobs on the API, newest first."""
    with _client(server, key) as api:
        for n, job in enumerate(api.jobs(status=status_filter, tags=_tags(tags))):
            if n >= limit:
                break
            if as_json:
                click.echo(json.dumps(job))
                continue
            progress = job["progress"]
            click.echo(
                f"{job['id']}  {job['status']:<10} {progress['chunks_done']}/{progress['chunks_total']}"
                f"  {job['name']}  {job['created_at']}"
            )


@click.command()
@click.argument("job_id")
@click.option(
    "--server",
    envvar="TTSBATCH_SERVER",
    help="API base URL [TTSBATCH_SERVER]; without it, read Redis and the store directly.",
)
@_key
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(
    ctx: click.Context, job_id: str, server: str | None, key: str | None, as_json: bool
) -> None:
    """Show JOB's status, progress and errors."""
    if not server:
        from ttsbatch.cli.cluster import status as cluster_status  # noqa: PLC0415

        ctx.invoke(cluster_status, job_id=job_id, as_json=as_json)
        return
    with _client(server, key) as api:
        job = api.job(job_id)
    if as_json:
        click.echo(json.dumps(job, indent=1))
        return
    progress = job["progress"]
    eta = f", eta {progress['eta_seconds']:.0f} s" if progress["eta_seconds"] else ""
    click.echo(f"job {job_id}: {job['status']}")
    click.echo(
        f"  chunks {progress['chunks_done']}/{progress['chunks_total']} done,"
        f" {progress['chunks_failed']} failed; {progress['audio_seconds']:.1f} s audio{eta}"
    )
    for error in job["errors"][:10]:
        click.echo(
            f"  {'failed' if error['final'] else 'last error'} {error['chunk']}: {error['error']}"
        )
    if job["error"]:
        click.echo(f"  reason: {job['error']}")


@click.command()
@click.argument("job_id")
@_server
@_key
@click.option(
    "-o",
    "--output",
    "outdir",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder.",
)
def fetch(job_id: str, server: str, key: str | None, outdir: Path) -> None:
    """Download every file of a succeeded JOB into a folder (checksums checked)."""
    with _client(server, key) as api:
        for path in api.download(job_id, outdir):
            click.echo(str(path))


@click.command()
@click.option("--host", help="Bind address [TTSBATCH_API_HOST, 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535), help="Port [TTSBATCH_API_PORT, 8000].")
def api(host: str | None, port: int | None) -> None:
    """Serve the REST API (keys from TTSBATCH_API_KEYS or TTSBATCH_API_KEYS_FILE)."""
    import uvicorn  # noqa: PLC0415 - keeps --help fast

    from scheduler.api import create_app  # noqa: PLC0415

    settings = Settings()
    app = create_app(settings)
    if not len(app.state.keyring):
        raise ConfigError(
            "no API keys: set TTSBATCH_API_KEYS (comma-separated) or TTSBATCH_API_KEYS_FILE"
        )
    uvicorn.run(
        app, host=host or settings.api.host, port=settings.api.port if port is None else port
    )


@click.command()
@click.option("--loglevel", "-l", default="info", show_default=True)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Threads of the embedded worker (webhook deliveries, scans, scheduled runs).",
)
def beat(loglevel: str, concurrency: int) -> None:
    """Run the cluster's background work: one redbeat beat (locked in Redis) and its worker.

    Schedules, webhook deliveries and the rescue of stalled jobs (scheduler/beat.py).
    """
    from scheduler.api.ports import connect_ports  # noqa: PLC0415 - keeps --help fast
    from scheduler.beat import BEAT_QUEUES, BEAT_SCHEDULER, create_beat_app  # noqa: PLC0415

    settings = Settings()
    app = create_beat_app(settings, connect=lambda: connect_ports(settings))
    app.worker_main(
        [
            "worker",
            "--beat",
            f"--scheduler={BEAT_SCHEDULER}",
            "--pool=threads",
            f"--concurrency={concurrency}",
            f"--queues={','.join(BEAT_QUEUES)}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


COMMANDS = (submit, jobs, status, fetch, api, beat)
