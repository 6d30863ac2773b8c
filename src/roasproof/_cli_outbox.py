"""``roasproof outbox ...`` and ``roasproof worker``: inspect and drain the durable outbox.

``roasproof.cli`` adds :data:`outbox_group` and :data:`worker_command` to
its main group. Both find the outbox the way the library does: ``--outbox``,
else ``ROASPROOF_OUTBOX``, else the default path under ``$XDG_STATE_HOME``.

Exit codes follow the rest of the CLI: 0 success, 1 delivery could not
finish (paused, unreachable, timed out), 2 bad input or settings.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import click

from roasproof._config import MEMORY, Settings, default_outbox_path
from roasproof._delivery import Engine, create_delivery
from roasproof._delivery._admin import OutboxAdmin
from roasproof.errors import ConfigurationError

__all__ = ["outbox_group", "worker_command"]


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(code)


def _path(value: str | None) -> Path:
    if value == MEMORY:
        _fail("an in-memory outbox (:memory:) lives inside its process; nothing to inspect", 2)
    return Path(value).expanduser() if value else default_outbox_path()


def _admin(ctx: click.Context) -> OutboxAdmin:
    path: Path = ctx.obj
    try:
        return OutboxAdmin(path)
    except FileNotFoundError:
        _fail(f"no outbox at {path} (set --outbox or ROASPROOF_OUTBOX)", 2)
    except ConfigurationError as exc:
        _fail(str(exc), 2)


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


outbox_option = click.option(
    "--outbox",
    "outbox",
    envvar="ROASPROOF_OUTBOX",
    metavar="PATH",
    help="The outbox file (default: ROASPROOF_OUTBOX, else the per-user state directory).",
)


@click.group("outbox")
@outbox_option
@click.pass_context
def outbox_group(ctx: click.Context, outbox: str | None) -> None:
    """Inspect and manage the durable outbox of tracked events."""
    ctx.obj = _path(outbox)


@outbox_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def status_command(ctx: click.Context, as_json: bool) -> None:
    """Counts by state, oldest pending event, pause reason and the elected sender."""
    admin = _admin(ctx)
    now = time.time()
    try:
        status = admin.status(now)
    finally:
        admin.close()
    if as_json:
        click.echo(json.dumps(status.as_dict(now), indent=2))
        return
    size = status.size_bytes / 1e6
    click.echo(f"outbox    {status.path} ({size:.1f} MB)")
    click.echo(
        f"pending   {status.pending} (due now {status.due}, waiting to retry "
        f"{status.waiting}, being sent {status.leased}, in journals {status.journaled})"
    )
    if status.oldest_created_at is not None:
        click.echo(f"oldest    {_ago(now - status.oldest_created_at)} old")
    click.echo(
        f"dead      {status.dead}" + (" (see: roasproof outbox dead)" if status.dead else "")
    )
    click.echo(f"rejected  {status.rejected} invalid events (see: roasproof outbox rejected)")
    pause = status.pause
    if pause is None:
        click.echo("paused    no")
    else:
        click.echo(
            f"paused    {pause.reason.upper()} since {_when(pause.since)}, next check "
            f"{_when(pause.until)}: {pause.message or ''}"
        )
    sender = status.sender
    if sender is None:
        click.echo(
            "sender    none (delivery starts with the next track(), or run: roasproof worker)"
        )
    else:
        click.echo(f"sender    pid {sender.pid} on {sender.hostname} (lease {_when(sender.until)})")


@outbox_group.command("dead")
@click.argument("event_ids", nargs=-1)
@click.option("--limit", default=50, show_default=True, help="How many to show.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def dead_command(ctx: click.Context, event_ids: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Dead letters: events the API refused for good (with its reason) or that expired."""
    admin = _admin(ctx)
    try:
        rows = admin.dead(limit, event_ids)
    finally:
        admin.close()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(row) for row in rows], indent=2))
        return
    if not rows:
        click.echo("no dead letters")
        return
    for row in rows:
        status = row.status_code if row.status_code is not None else "-"
        field = f" field={row.field}" if row.field else ""
        click.echo(
            f"{row.event_id}  {row.event}  {status}{field}  {row.reason}  "
            f"(attempts {row.attempts}, dead {_when(row.dead_at)})"
        )
    click.echo("requeue with: roasproof outbox retry [EVENT_ID...] --all")


@outbox_group.command("rejected")
@click.option("--limit", default=50, show_default=True, help="How many to show.")
@click.pass_context
def rejected_command(ctx: click.Context, limit: int) -> None:
    """Invalid events track() refused (field names and messages; never PII)."""
    admin = _admin(ctx)
    try:
        rows = admin.rejected(limit)
    finally:
        admin.close()
    if not rows:
        click.echo("no rejected events")
    for row in rows:
        click.echo(
            f"{_when(row.at)}  {row.event or '?'}  {row.event_id or '-'}  fix: "
            f"{', '.join(row.fields)}"
        )
        click.echo("    " + row.message.replace("\n", "\n    "))


@outbox_group.command("retry")
@click.argument("event_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Requeue every dead letter.")
@click.pass_context
def retry_command(ctx: click.Context, event_ids: tuple[str, ...], everything: bool) -> None:
    """Requeue dead letters (the ones named, or --all) for delivery."""
    if not event_ids and not everything:
        _fail("name the EVENT_IDs to requeue, or pass --all", 2)
    admin = _admin(ctx)
    try:
        count = admin.retry(() if everything else event_ids)
    finally:
        admin.close()
    click.echo(f"requeued {count} dead letter(s)")


@outbox_group.command("purge")
@click.option("--dead", "dead", is_flag=True, help="Delete the dead letters (required).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def purge_command(ctx: click.Context, dead: bool, yes: bool) -> None:
    """Delete every dead letter for good (pending events are never purged)."""
    if not dead:
        _fail("only dead letters can be purged: pass --dead", 2)
    if not yes:
        click.confirm("Delete every dead letter for good?", abort=True)
    admin = _admin(ctx)
    try:
        count = admin.purge_dead()
    finally:
        admin.close()
    click.echo(f"purged {count} dead letter(s)")


@outbox_group.command("resume")
@click.pass_context
def resume_command(ctx: click.Context) -> None:
    """End an auth or quota pause now (after fixing the key or the plan)."""
    admin = _admin(ctx)
    try:
        ended = admin.resume()
    finally:
        admin.close()
    click.echo("pause ended" if ended else "delivery was not paused")


def _engine(outbox: Path, api_key: str | None, endpoint: str | None, elect: bool | None) -> Engine:
    try:
        settings = Settings.resolve(api_key, endpoint=endpoint, outbox=outbox)
    except ConfigurationError as exc:
        _fail(str(exc), 2)
    if settings.api_key is None:
        _fail("no API key: pass --api-key or set ROASPROOF_API_KEY", 2)
    return create_delivery(settings, elect=elect)


api_key_option = click.option("--api-key", envvar="ROASPROOF_API_KEY", help="The API key.")
endpoint_option = click.option("--endpoint", help="The ingest API base URL.")


@outbox_group.command("drain")
@api_key_option
@endpoint_option
@click.option("--timeout", default=300.0, show_default=True, help="Give up after this many s.")
@click.pass_context
def drain_command(
    ctx: click.Context, api_key: str | None, endpoint: str | None, timeout: float
) -> None:
    """Deliver everything now, with a progress bar and ETA, then exit."""
    engine = _engine(ctx.obj, api_key, endpoint, elect=False)
    try:
        start = engine.pending()
        if start == 0:
            click.echo("nothing to deliver")
            return
        with click.progressbar(length=start, label="delivering", show_eta=True) as bar:
            done = _drain(engine, timeout, lambda n: bar.update(n))
        pause = engine.pause
    finally:
        engine.close(timeout=5.0)
    if not done:
        why = f"delivery is paused ({pause.reason}): {pause.message}" if pause else "timed out"
        _fail(f"{engine.pending()} event(s) left: {why}")
    click.echo(f"delivered {start} event(s)")


def _drain(engine: Engine, timeout: float, advance: Callable[[int], None]) -> bool:
    """Run :meth:`Engine.flush` in a thread, reporting progress from this one."""
    result: list[bool] = []
    worker = threading.Thread(target=lambda: result.append(engine.flush(timeout)), daemon=True)
    worker.start()
    last = engine.pending()
    while worker.is_alive():
        worker.join(0.25)
        now = engine.pending()
        if now < last:
            advance(last - now)
            last = now
    return bool(result and result[0])


@click.command("worker")
@outbox_option
@api_key_option
@endpoint_option
@click.option(
    "--senders",
    type=click.Choice(["one", "all"]),
    default=None,
    help="'one' (default): take part in the election of one sender per outbox.",
)
def worker_command(
    outbox: str | None, api_key: str | None, endpoint: str | None, senders: str | None
) -> None:
    """Deliver an outbox continuously: a sidecar for apps that cannot run threads.

    \b
    Run it next to uWSGI without threads (attach-daemon), gevent workers, or
    any process model where a background thread is unwelcome. Stops on
    SIGTERM or Ctrl-C; undelivered events stay in the outbox.
    """
    engine = _engine(
        _path(outbox), api_key, endpoint, None if senders is None else senders == "one"
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    engine.start()
    click.echo(f"roasproof worker delivering {engine.settings.outbox}; stop with Ctrl-C")
    while not stop.wait(1.0):
        pass
    engine.close(timeout=10.0)
    click.echo("roasproof worker stopped")
