"""`outreach`: run the platform and administer its store from the command line."""

import getpass
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from access import auth, console
from access.errors import Refused
from app.logs import RedactSecrets
from conversations import duty
from ground.private import make_files_private, tighten
from ground.settings import PROJECT_ROOT, Settings, get_settings
from ground.store import make_engine, make_session_factory
from models import Campaign, Role, User, utcnow
from models.migrate import upgrade

# The commands import what they alone use (the web app, the engine, the voice stack) when they run: an operator's
# `outreach contacts import` starts in half the time it took with everything imported up front.
if TYPE_CHECKING:
    from app.engine_process import EngineProcess
    from campaigns.importer import ImportSummary

app = typer.Typer(help="Chatbot and callbot outreach for epidemic follow-up.", no_args_is_help=True)
db_app = typer.Typer(help="The declaration store.", no_args_is_help=True)
user_app = typer.Typer(help="Console users and their API tokens.", no_args_is_help=True)
engine_app = typer.Typer(help="The dialogue engine (Rasa).", no_args_is_help=True)
contacts_app = typer.Typer(help="F1 contact lists.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")
people_app = typer.Typer(help="Residents: move one between provinces.", no_args_is_help=True)
app.add_typer(people_app, name="people")
campaign_app = typer.Typer(help="Outreach campaigns over contact lists.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")
roster_app = typer.Typer(help="Who is on duty to be told of urgent alerts (by Zalo or SMS).", no_args_is_help=True)
app.add_typer(roster_app, name="roster")
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(engine_app, name="engine")
voice_app = typer.Typer(help="Calls' speech: check a recognition model.", no_args_is_help=True)
app.add_typer(voice_app, name="voice")
declarations_app = typer.Typer(help="Health declarations: export them in the national form.", no_args_is_help=True)
app.add_typer(declarations_app, name="declarations")
checkins_app = typer.Typer(help="QR check-ins from the national health-declaration platform.", no_args_is_help=True)
app.add_typer(checkins_app, name="checkins")
results_app = typer.Typer(help="Laboratory test results (the e-testing platform's).", no_args_is_help=True)
app.add_typer(results_app, name="results")
vaccinations_app = typer.Typer(help="Vaccine doses (the vaccination platform's).", no_args_is_help=True)
app.add_typer(vaccinations_app, name="vaccinations")
f1_app = typer.Typer(help="F1 lists derived from check-ins (co-presence with cases).", no_args_is_help=True)
app.add_typer(f1_app, name="f1")
teams_app = typer.Typer(help="Community teams and the instructions broadcast to them by Zalo.", no_args_is_help=True)
app.add_typer(teams_app, name="teams")

err = Console(stderr=True)
log = logging.getLogger("outreach")


@app.callback()
def _private_files() -> None:
    """Whatever a command writes (the store, logs, rejects, prompts, secrets) is readable by its owner only."""
    make_files_private()


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    for chatty in ("apscheduler.executors.default", "httpx"):  # one line per job run / request otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").addFilter(RedactSecrets())


def _stop_on_sigterm(*_: object) -> None:
    """SIGTERM (systemd, `docker stop`) stops serve as Ctrl-C does: uvicorn shuts down, then re-raises the signal,
    which lands here and unwinds serve's ExitStack, stopping the engine and the scheduler too."""
    raise SystemExit(0)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


def _store(settings: Settings) -> sessionmaker[Session]:
    """Sessions on an up-to-date store (migrations are idempotent and cheap when nothing is pending)."""
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return make_session_factory(engine)


@contextmanager
def _as_operator() -> Iterator[tuple[Session, User]]:
    """A unit of work of the operator (a national admin, see `auth.operator`), committed at the end. What the domain
    refuses is an error message and exit code 1."""
    try:
        with _store(get_settings())() as session:
            yield session, auth.operator()
            session.commit()
    except Refused as error:
        raise _fail(str(error)) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="default: OUTREACH_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default: OUTREACH_PORT")] = None,
) -> None:
    """Run the API and the scheduler; start the engine as a child unless OUTREACH_ENGINE_URL is set."""
    import uvicorn

    from app.engine_process import EngineProcess, EngineUnavailable
    from app.web import create_app
    from app.worker import DispatchLoop, build_scheduler
    from connectors.twilio_stream import WS_MAX_BYTES

    settings = get_settings()
    _configure_logging(settings)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    if tightened := tighten(PROJECT_ROOT / "var"):
        log.info("made %d file(s) under var/ private (owner only)", tightened)
    db_engine = make_engine(settings.database_url)
    upgrade(db_engine)
    with ExitStack() as running:  # stopped in reverse order, whatever ends the server
        engine = None
        if not settings.engine_url:
            engine = EngineProcess(settings, settings.log_dir / "engine.log")
            running.callback(engine.stop)
            try:
                engine.start()
            except EngineUnavailable as error:
                raise _fail(str(error)) from None
            threading.Thread(target=_report_engine_ready, args=(engine, settings), daemon=True).start()
        if settings.scheduler_enabled:
            dispatch = DispatchLoop(settings)
            running.callback(dispatch.close)
            scheduler = build_scheduler(settings, db_engine, engine, dispatch)
            scheduler.start()
            running.callback(scheduler.shutdown, wait=False)
        # uvicorn would believe X-Forwarded-For from loopback: OUTREACH_TRUSTED_PROXIES alone decides (create_app)
        uvicorn.run(
            create_app(settings),
            host=host or settings.host,
            port=port or settings.port,
            log_level=settings.log_level,
            proxy_headers=False,
            ws_max_size=WS_MAX_BYTES,
        )


@app.command()
def worker(
    check: Annotated[bool, typer.Option("--check", help="exit 0 if a worker's scheduler ran lately, else 1")] = False,
) -> None:
    """Run the scheduler alone (campaign dispatch and planning), for deployments with separate API replicas."""
    from app.worker import HEARTBEAT_INTERVAL_S, DispatchLoop, build_scheduler, heartbeat_age_s

    settings = get_settings()
    if check:
        age = heartbeat_age_s(settings.heartbeat_file)
        if age is None or age > 3 * HEARTBEAT_INTERVAL_S:
            raise _fail(
                f"no scheduler heartbeat in {settings.heartbeat_file} for the last {3 * HEARTBEAT_INTERVAL_S} s"
            )
        print(f"scheduler alive ({age:.0f} s since its last heartbeat)")
        return
    _configure_logging(settings)
    db_engine = make_engine(settings.database_url)
    upgrade(db_engine)
    dispatch = DispatchLoop(settings)
    scheduler = build_scheduler(settings, db_engine, engine=None, dispatch=dispatch)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    scheduler.start()
    log.info("worker running; Ctrl-C or SIGTERM stops it")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown()
        dispatch.close()


def _report_engine_ready(engine: "EngineProcess", settings: Settings) -> None:
    from app.engine_process import EngineUnavailable

    try:
        engine.wait_ready(settings.engine_start_timeout_s)
        log.info("engine ready at %s", engine.url)
    except EngineUnavailable as error:
        log.error("%s", error)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Apply the store's migrations (creates the store on first use)."""
    settings = get_settings()
    upgrade(make_engine(settings.database_url), revision)
    err.print(f"store at revision {revision}: {make_engine(settings.database_url).url.render_as_string()}")


@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[Role, typer.Option(help="what the user may do")],
    province: Annotated[str | None, typer.Option(help="two-digit province code; omit for every province")] = None,
) -> None:
    """Create a user and print a new API token (the token alone on the last line; it is shown only once)."""
    try:
        with _store(get_settings()).begin() as session:
            created = auth.add_user(session, name, role, province)
    except auth.AuthError as error:
        raise _fail(str(error)) from None
    scope = f"province {province}" if province else "every province"
    err.print(f"user '{name}' ({role.value}, {scope}) created; keep this token, it is not stored:")
    print(created.token)


def _existing_user(session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise _fail(f"no user named '{name}'; `outreach user list` shows who exists")
    return user


@user_app.command("token")
def user_token(name: str) -> None:
    """Print a new API token for an existing user (older tokens stay valid until revoked)."""
    with _store(get_settings()).begin() as session:
        token = auth.issue_token(session, _existing_user(session, name))
    print(token)


@user_app.command("revoke")
def user_revoke(name: str) -> None:
    """Revoke every token of a user (a lost laptop, someone leaving the team)."""
    with _store(get_settings()).begin() as session:
        revoked = auth.revoke_tokens(session, _existing_user(session, name))
    err.print(f"revoked {revoked} token(s) of '{name}'")


@user_app.command("password")
def user_password(name: str) -> None:
    """Set a user's console password, read from standard input: a terminal asks twice; from a pipe, the first line.
    Signs the user out of every browser."""
    password = _read_password()
    try:
        with _store(get_settings()).begin() as session:
            user = _existing_user(session, name)
            console.set_password(user, password)
            ended = console.end_sessions_of(session, user)
    except auth.AuthError as error:
        raise _fail(str(error)) from None
    err.print(f"console password of '{name}' set; {ended} browser session(s) signed out")


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("New console password: ")
        if getpass.getpass("Again: ") != first:
            raise _fail("the two passwords differ; nothing changed")
        return first
    line = sys.stdin.readline()
    return line.removesuffix("\n").removesuffix("\r")


@user_app.command("list")
def user_list() -> None:
    """List users with their role and province."""
    table = Table("name", "role", "province", "tokens", "created")
    with _store(get_settings()).begin() as session:
        for user in session.scalars(select(User).order_by(User.name)):
            active = sum(1 for t in user.tokens if t.revoked_at is None)
            table.add_row(
                user.name,
                user.role.value,
                user.province_code or "all",
                str(active),
                f"{user.created_at:%Y-%m-%d}",
            )
    Console().print(table)


@roster_app.command("add")
def roster_add(
    name: str,
    phone: Annotated[str, typer.Option(help="any common form; urgent alerts are texted here")],
    province: Annotated[str | None, typer.Option(help="two-digit province code; omit for residents of none")] = None,
    zalo_user_id: Annotated[str | None, typer.Option(help="the member's id as the OA knows it (Zalo first)")] = None,
    position: Annotated[int, typer.Option(help="who is told first (1), then next on escalation")] = 1,
) -> None:
    """Put a tracer on the duty roster (on duty from now)."""
    try:
        with _store(get_settings()).begin() as session:
            member = duty.add_member(
                session,
                auth.operator(),
                name=name,
                phone=phone,
                province_code=province,
                zalo_user_id=zalo_user_id,
                position=position,
            )
            print(member.id)
    except Refused as error:
        raise _fail(str(error)) from None


@roster_app.command("list")
def roster_list(province: Annotated[str | None, typer.Option(help="two-digit province code")] = None) -> None:
    """The roster, in the order its members are told."""
    table = Table("id", "province", "position", "name", "phone", "zalo", "on duty")
    with _store(get_settings()).begin() as session:
        for member in duty.roster(session, auth.operator(), province):
            where, zalo = member.province_code or "-", member.zalo_user_id or ""
            on_duty = "yes" if member.on_duty else "no"
            table.add_row(str(member.id), where, str(member.position), member.name, member.phone, zalo, on_duty)
    Console().print(table)


@roster_app.command("duty")
def roster_duty(member_id: int, state: Annotated[str, typer.Argument(help="on or off")]) -> None:
    """Put a roster member on or off duty."""
    if state not in ("on", "off"):
        raise _fail("say on or off")
    try:
        with _store(get_settings()).begin() as session:
            duty.set_on_duty(session, auth.operator(), member_id, state == "on")
    except Refused as error:
        raise _fail(str(error)) from None


@roster_app.command("remove")
def roster_remove(member_id: int) -> None:
    """Take someone off the roster (the notifications they were sent keep their name)."""
    try:
        with _store(get_settings()).begin() as session:
            duty.remove_member(session, auth.operator(), member_id)
    except Refused as error:
        raise _fail(str(error)) from None


@engine_app.command("train")
def engine_train() -> None:
    """Train the engine model if bot/ or config.yml changed since the last one (prints the model path)."""
    from app.engine_process import EngineUnavailable, ensure_model

    settings = get_settings()
    _configure_logging(settings)
    try:
        path: Path = ensure_model(settings)
    except EngineUnavailable as error:
        raise _fail(str(error)) from None
    print(path)


@voice_app.command("transcribe")
def voice_transcribe(
    file: Annotated[Path, typer.Argument(help="a sound file (WAV, FLAC, OGG, MP3), any sample rate")],
    engine: Annotated[
        str | None, typer.Option(help="viet-asr or vosk (default: the platform's, OUTREACH_ASR_ENGINE)")
    ] = None,
    line: Annotated[bool, typer.Option(help="hear it as a call would: mu-law at 8 kHz first")] = False,
) -> None:
    """Print what a recogniser hears in a recording (the last line of output), to check a model."""
    from voice import recognition, telephony

    settings = get_settings()
    try:
        samples, rate = telephony.read_audio(file)
        if line:
            samples, rate = telephony.ulaw_decode(telephony.on_the_line(file)), telephony.RATE
        recognizer = recognition.recognizer(engine or settings.asr_engine, settings.vosk_model_dir)
    except (ValueError, recognition.RecognitionUnavailable) as error:
        raise _fail(str(error)) from None
    heard = recognition.transcribe(recognizer, samples, rate)
    confidence = "" if heard.confidence is None else f" (confidence {heard.confidence:.2f})"
    err.print(f"{recognizer.name}, {len(samples) / rate:.1f} s at {rate} Hz{confidence}:")
    print(heard.text)


@contacts_app.command("import")
def contacts_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a .csv or .xlsx list")],
    list_name: Annotated[str, typer.Option("--list", help="name of the new contact list")],
    province: Annotated[str | None, typer.Option(help="province code of the list (rows may name their own)")] = None,
    column: Annotated[
        list[str] | None, typer.Option("--map", help="'Header=field' for a column the importer does not know")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")] = False,
) -> None:
    """Import an F1 list whole or not at all; rejected rows go to FILE.rejects.csv with their reason."""
    import json

    from rich.progress import Progress, SpinnerColumn, TextColumn

    from campaigns.importer import UnusableFile, import_contacts

    try:
        column_map = dict(item.split("=", 1) for item in column or [])
        province_code = auth.validate_province_code(province)
    except ValueError as error:
        raise _fail(f"{error} (--map takes 'Header=field')") from None
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description} {task.completed:,} rows"),
        console=err,
        transient=True,
        disable=as_json,
    ) as progress:
        task = progress.add_task(f"importing {file.name}", total=None)
        try:
            summary = import_contacts(
                _store(get_settings()),
                file,
                list_name,
                province=province_code,
                column_map=column_map,
                progress=lambda n: progress.advance(task, n),
            )
        except UnusableFile as error:
            raise _fail(str(error)) from None
    if as_json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
        return
    _print_list_import(summary)


def _print_list_import(summary: "ImportSummary") -> None:
    print(
        f"list {summary.list_id}: {summary.imported} imported, {summary.duplicates} merged duplicates, "
        f"{summary.rejected} rejected"
    )
    if summary.rejects_file:
        print(f"rejected rows and reasons: {summary.rejects_file}")


@declarations_app.command("export")
def declarations_export(
    output: Annotated[Path, typer.Option("-o", "--output", help="the file to write")],
    file_format: Annotated[str, typer.Option("--format", help="csv or xlsx")] = "csv",
    created_from: Annotated[str | None, typer.Option("--from", help="first day declared (dd/mm/yyyy)")] = None,
    created_to: Annotated[str | None, typer.Option("--to", help="last day declared, inclusive")] = None,
    campaign: Annotated[int | None, typer.Option(help="only this campaign's declarations")] = None,
) -> None:
    """Declarations in the national health-declaration form's field order and codes (the export is audited)."""
    from campaigns.importer import parse_date
    from conversations.national_form import begin_national_export
    from conversations.reading import DeclarationFilter

    try:
        first = parse_date(created_from, "--from") if created_from else None
        last = parse_date(created_to, "--to", future=True) if created_to else None
    except ValueError as error:
        raise _fail(str(error)) from None
    where = DeclarationFilter(campaign_id=campaign, created_from=first, created_to=last)
    settings = get_settings()
    with _as_operator() as (session, operator):
        via = {"via": "cli", "file": str(output.resolve())}
        export = begin_national_export(session, operator, where, file_format, settings.timezone, detail=via)
        with output.open("wb") as sink:
            export.write(session, sink)
    print(f"declarations in the national form written to {output}")


@checkins_app.command("import")
def checkins_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a .csv or .parquet file of check-ins")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")] = False,
) -> None:
    """Import check-ins (venue_id, phone, checked_in_at, checked_out_at); unusable rows go to FILE.rejects.csv."""
    import json

    from tracing.checkins import UnusableFile, import_checkins

    settings = get_settings()
    try:
        summary = import_checkins(_store(settings), auth.operator(), file, settings)
    except UnusableFile as error:
        raise _fail(str(error)) from None
    if as_json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
        return
    if summary.already_imported:
        print(f"{file.name} was imported before ({summary.imported:,} check-ins): nothing added")
        return
    print(f"{summary.imported:,} check-ins imported, {summary.rejected:,} rejected")
    if summary.rejects_file:
        print(f"rejected rows and reasons: {summary.rejects_file}")


@results_app.command("import")
def results_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or XLSX: phone, sample_date, ...")],
    derive_list: Annotated[
        str | None, typer.Option(help="derive the new cases' F1s from the check-ins into a list of this name")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")] = False,
) -> None:
    """Import results (phone, sample_date, result, lab): a positive one makes a confirmed case and an urgent alert."""
    import json

    from campaigns.importer import ReadLimits
    from models import ContactList
    from tracing.results import UnusableFile, derive_new_cases, import_results

    if derive_list and len(derive_list) > ContactList.name.type.length:
        raise _fail(f"--derive-list: a list's name is at most {ContactList.name.type.length} characters")
    settings = get_settings()
    sessions, operator = _store(settings), auth.operator()
    try:
        summary = import_results(sessions, operator, file, limits=ReadLimits.from_settings(settings))
    except UnusableFile as error:
        raise _fail(str(error)) from None
    derived, why_not = derive_new_cases(sessions, operator, settings, summary, derive_list, file.name)
    if as_json:
        found = {"derived": derived.as_dict() if derived else None, "not_derived": why_not}
        print(json.dumps({**summary.as_dict(), **found}, ensure_ascii=False))
        return
    print(
        f"{summary.imported} results imported ({len(summary.new_cases)} new confirmed cases), "
        f"{summary.duplicates} already known, {summary.rejected} rejected"
    )
    if summary.rejects_file:
        print(f"rejected rows and reasons: {summary.rejects_file}")
    if derived:
        print(f"{len(derived.f1s):,} F1s of the new cases")
        if derived.contact_list:
            _print_list_import(derived.contact_list)
    if why_not:
        print(f"no list derived: {why_not}")


@vaccinations_app.command("import")
def vaccinations_import(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV or XLSX: phone, doses, last_dose_date")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")] = False,
) -> None:
    """Import vaccine doses; the dialogue then confirms them instead of asking."""
    import json

    from campaigns.importer import ReadLimits
    from tracing.vaccinations import UnusableFile, import_vaccinations

    settings = get_settings()
    try:
        summary = import_vaccinations(
            _store(settings), auth.operator(), file, limits=ReadLimits.from_settings(settings)
        )
    except UnusableFile as error:
        raise _fail(str(error)) from None
    if as_json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
        return
    print(f"{summary.imported} records imported, {summary.duplicates} already known, {summary.rejected} rejected")
    if summary.rejects_file:
        print(f"rejected rows and reasons: {summary.rejects_file}")


@f1_app.command("derive")
def f1_derive(
    cases: Annotated[
        Path,
        typer.Option(exists=True, dir_okay=False, help="CSV or XLSX: phone, infectious_from, infectious_to, case_code"),
    ],
    list_name: Annotated[str, typer.Option("--list", help="name of the new contact list of the F1s")],
    province: Annotated[str | None, typer.Option(help="province code of the list")] = None,
    dwell_minutes: Annotated[int, typer.Option(help="how long a visit with no check-out lasts")] = 60,
    out: Annotated[Path | None, typer.Option(help="also write the F1s here as CSV")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")] = False,
) -> None:
    """Find the F1s of the cases in the check-ins, and import them as a contact list ready for a campaign."""
    import json

    from campaigns.importer import ReadLimits
    from tracing.copresence import UnusableFile, derive_f1, read_cases

    settings = get_settings()
    try:
        province_code = auth.validate_province_code(province)
        derivation = derive_f1(
            _store(settings),
            auth.operator(),
            settings,
            read_cases(cases, ReadLimits.from_settings(settings)),
            list_name,
            source=cases.name,
            province=province_code,
            dwell_minutes=dwell_minutes,
            out=out,
        )
    except (UnusableFile, auth.AuthError) as error:
        raise _fail(str(error)) from None
    if as_json:
        print(json.dumps(derivation.as_dict(), ensure_ascii=False))
        return
    print(
        f"{len(derivation.f1s):,} F1s of {derivation.cases} cases in {derivation.seconds:.2f} s "
        f"({derivation.checkin_files} check-in files)"
    )
    if derivation.contact_list:
        _print_list_import(derivation.contact_list)
    if derivation.out_file:
        print(f"written to {derivation.out_file}")


@people_app.command("move")
def people_move(
    phone: Annotated[str, typer.Argument(help="the person's phone, in any common form")],
    province: Annotated[str, typer.Option(help="two-digit code of the province that follows them from now on")],
    reason: Annotated[str | None, typer.Option(help="why, for the audit log")] = None,
) -> None:
    """Move a person to another province (a national action, written to the audit log)."""
    from campaigns.people import move_person, person_by_phone

    with _as_operator() as (session, operator):
        person = person_by_phone(session, operator, phone)
        before = move_person(session, operator, person, province, reason)
    moved = f"{person.phone}: province {before or 'none'} -> {province}"
    print(moved if before != province else f"{person.phone} is in {province}")


def _show_campaign(session: Session, campaign: Campaign) -> None:
    from campaigns.outcomes import local_today
    from campaigns.progress import attempts_by_status, counted_days
    from campaigns.rules import CampaignRules

    today = local_today(CampaignRules.model_validate(campaign.rules), utcnow())
    counts = attempts_by_status(counted_days(session, campaign, today))
    attempts = ", ".join(f"{n} {status}" for status, n in counts.items()) or "none planned"
    print(f"campaign {campaign.id} '{campaign.name}': {campaign.status.value}; attempts: {attempts}")


def _campaign(session: Session, operator: User, campaign_id: int) -> Campaign:
    return auth.get_in_scope(session, operator, Campaign, campaign_id, "campaign")


@campaign_app.command("create")
def campaign_create(
    name: str,
    list_ids: Annotated[list[int], typer.Option("--list", help="contact list id (repeat for several)")],
    rules_file: Annotated[Path | None, typer.Option("--rules", exists=True, help="JSON rules (see README)")] = None,
) -> None:
    """Create a draft campaign over contact lists; rules default to calling hours 08:00-11:30, 13:30-20:00."""
    from pydantic import ValidationError

    from campaigns.creation import create_campaign
    from campaigns.rules import CampaignRules

    try:
        rules = CampaignRules.model_validate_json(rules_file.read_text()) if rules_file else CampaignRules()
    except ValidationError as error:
        raise _fail(f"rules: {error}") from None
    with _as_operator() as (session, operator):
        _show_campaign(session, create_campaign(session, operator, name, list_ids, rules))


@campaign_app.command("show")
def campaign_show(campaign_id: int) -> None:
    """A campaign's status (draft, running, paused, canceled, or completed once its last follow-up day has closed)
    and its attempts by status."""
    with _as_operator() as (session, operator):
        _show_campaign(session, _campaign(session, operator, campaign_id))


@campaign_app.command("change")
def campaign_change(
    campaign_id: int, action: Annotated[str, typer.Argument(help="start, pause, resume or cancel")]
) -> None:
    """Start, pause, resume or cancel a campaign."""
    from campaigns.lifecycle import transition

    with _as_operator() as (session, operator):
        campaign = _campaign(session, operator, campaign_id)
        transition(session, campaign, action, utcnow())
        session.flush()
        _show_campaign(session, campaign)


@campaign_app.command("export")
def campaign_export(
    campaign_id: int,
    output: Annotated[Path, typer.Option("--output", "-o", help="the file to write")],
    file_format: Annotated[str, typer.Option("--format", help="csv or xlsx")] = "csv",
) -> None:
    """One row per person per follow-up day. The file holds health data: the export goes into the audit log."""
    from campaigns.export import begin_export

    with _as_operator() as (session, operator):
        via = {"via": "cli", "file": str(output.resolve())}
        export = begin_export(session, operator, campaign_id, file_format, utcnow(), detail=via)
        with output.open("wb") as sink:
            export.write(session, sink)
    print(f"campaign {campaign_id} exported to {output}")


@teams_app.command("import")
def teams_import(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV or XLSX: name, phone, zalo_user_id (optional)")
    ],
    name: Annotated[str, typer.Option("--team", help="the team; a new name makes a new team")],
    province: Annotated[str | None, typer.Option(help="two-digit province code (none: a national team)")] = None,
) -> None:
    """Make a team's members those of the file (members not in it leave the team)."""
    from campaigns.importer import ReadLimits
    from campaigns.listfile import UnusableFile
    from campaigns.teams import import_team

    limits = ReadLimits.from_settings(get_settings())
    with _as_operator() as (session, operator):
        try:
            summary = import_team(session, operator, file, name, province, limits=limits)
        except UnusableFile as error:
            raise _fail(str(error)) from None
    print(
        f"team {summary.team_id}: {summary.members} members ({summary.added} added, {summary.removed} removed), "
        f"{summary.rejected} rows rejected"
    )
    for line, reason in summary.first_rejects:
        print(f"  row {line}: {reason}")


@teams_app.command("list")
def teams_list() -> None:
    """The teams, with their member counts."""
    from campaigns.teams import teams

    with _as_operator() as (session, operator):
        table = Table("id", "team", "province", "members")
        for team in teams(session, operator):
            table.add_row(str(team.id), team.name, team.province_code or "national", str(len(team.members)))
    Console().print(table)


@teams_app.command("broadcast")
def teams_broadcast(
    team_id: int,
    message: Annotated[str | None, typer.Option(help="the instructions, as members will read them")] = None,
    message_file: Annotated[
        Path | None, typer.Option("--message-file", exists=True, dir_okay=False, help="read them from a UTF-8 file")
    ] = None,
) -> None:
    """Queue a message for every member of the team; the worker sends it by Zalo (OA message or ZNS)."""
    from campaigns.teams import start_broadcast

    if (message is None) == (message_file is None):
        raise _fail("give --message or --message-file")
    if not get_settings().zalo_app_id:
        raise _fail("the Zalo OA is not set up (OUTREACH_ZALO_APP_ID): a broadcast could not be sent")
    text = message if message is not None else message_file.read_text(encoding="utf-8")
    with _as_operator() as (session, operator):
        broadcast = start_broadcast(session, operator, team_id, text)
        print(f"broadcast {broadcast.id} queued for {len(broadcast.deliveries)} members")


@teams_app.command("report")
def teams_report(
    broadcast_id: int,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")] = False,
) -> None:
    """Who received, read and answered a broadcast."""
    import dataclasses
    import json

    from campaigns.teams import report

    with _as_operator() as (session, operator):
        found = report(session, operator, broadcast_id)
    if as_json:
        print(json.dumps(dataclasses.asdict(found), ensure_ascii=False, default=str))
        return
    print(f"broadcast {found.broadcast_id} to {found.team}: " + ", ".join(f"{k} {v}" for k, v in found.counts.items()))
    table = Table("member", "phone", "channel", "status", "replies")
    for row in found.members:
        table.add_row(
            row.name,
            row.phone,
            row.channel or "-",
            f"{row.status}: {row.error}" if row.error else row.status,
            " | ".join(row.replies),
        )
    Console().print(table)


@teams_app.command("cancel")
def teams_cancel(broadcast_id: int) -> None:
    """Cancel a broadcast's deliveries not sent yet."""
    from campaigns.teams import cancel

    with _as_operator() as (session, operator):
        print(f"{cancel(session, operator, broadcast_id)} deliveries canceled")


@teams_app.command("resend")
def teams_resend(broadcast_id: int) -> None:
    """Send a broadcast's failed deliveries again (once what made them fail is fixed)."""
    from campaigns.teams import resend_failed

    with _as_operator() as (session, operator):
        print(f"{resend_failed(session, operator, broadcast_id)} deliveries queued again")
