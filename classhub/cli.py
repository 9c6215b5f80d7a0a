"""The `classhub` command: a list of idempotent verbs over one validated site."""

from __future__ import annotations

import argparse
import json
import os
import sys

from classhub import __version__
from classhub.config import load_platform
from classhub.errors import ClasshubError
from classhub.state import StateDir


def _platform(args):
    platform = load_platform(args.site)
    args.loaded_platform = platform  # so that main() can put the command in the audit trail
    return platform


def cmd_check(args) -> int:
    platform = _platform(args)
    print(f"{platform.site_file}: valid; courses: {', '.join(sorted(platform.courses)) or 'none'}")
    _check_gpus(platform)
    return 0


def _check_gpus(platform) -> None:
    """Courses that want a GPU on a node that has none of the kind they need: said now, not
    at the first student's spawn."""
    from classhub.gpu import inventory

    wanting = platform.gpu_courses()
    if not wanting:
        return
    found = inventory.read(platform.site.gpu)
    slices = sum(d.is_mig for d in found.devices)
    whole = len(found.devices) - slices
    print(f"GPUs ({found.source}): {whole} whole, {slices} MIG slice(s)"
          f"{' - ' + found.note if found.note else ''}")
    for course, policy in sorted(wanting.items()):
        if not (slices if policy == "mig" else whole):
            print(f"classhub: warning: course {course} wants gpu.policy {policy} but this node "
                  f"has no {'MIG slice' if policy == 'mig' else 'whole GPU'}; its students' "
                  f"spawns will be refused", file=sys.stderr)


def cmd_up(args) -> int:
    from classhub.platform import up

    started = up(_platform(args))
    print(f"classhub is up: {started.url}")
    for admin, path in started.admin_passwords.items():
        print(f"  log in as {admin!r}; the initial password is in {path} (root only)")
    print("  enrol people: classhub roster add COURSE USERNAME  (their passwords go to a handout "
          "file for the instructor)")
    return 0


def cmd_serve(args) -> int:
    from classhub import platform as platforms

    platform = _platform(args)
    if args.what == "settle":
        print(f"classhub: waiting up to {args.wait_s} s for the hub to answer", flush=True)
        platforms.settle(platform, platforms.engines.client(), restarted=True,
                         timeout_s=args.wait_s, strict=False)
        print("classhub: the hub answers; rosters and course configs are in step", flush=True)
        return 0
    platforms.serve(platform, args.what)  # does not return: becomes the proxy or the hub
    return 1


def cmd_down(args) -> int:
    from classhub.platform import down

    done = down(_platform(args))
    print("classhub is down" + (": " + "; ".join(done) if done else " (nothing was running)"))
    return 0


def _size(value) -> str:
    if not value:
        return "-"
    return f"{value / 2**30:.1f}G" if value >= 2**30 else f"{value / 2**20:.0f}M"


def cmd_status(args) -> int:
    from classhub.platform import status

    report = status(_platform(args))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"hub: {report['hub']}   proxy: {report['proxy']}   engine: {report['engine']}   "
          f"url: {report['url']}")
    print(f"courses: {', '.join(report['courses']) or 'none'}")
    gpus = report.get("gpus", {})
    if gpus.get("devices") or gpus.get("courses"):
        print("\n".join(_gpu_lines(report["gpus"])))
    print(f"servers running: {len(report['servers'])}")
    for s in report["servers"]:
        print(f"  {s['user']:<20} {s['course']:<16} {s['image']:<24} "
              f"mem {_size(s.get('memory_bytes'))}/{_size(s.get('mem_limit_bytes'))}  "
              f"cpu {s['cpu_limit']:g}  pids {s.get('pids', '-')}/{s.get('pids_limit')}")
    return 0


def _gpu_lines(gpus: dict) -> list[str]:
    note = f": {gpus['note']}" if gpus["note"] else ""
    lines = [f"GPUs ({gpus['inventory']}{note}): {len(gpus['devices'])}"]
    for d in gpus["devices"]:
        memory = (f"{d['memory_used_mib'] if d['memory_used_mib'] is not None else '?'}"
                  f"/{d['memory_mib'] or '?'} MiB")
        slice_of = f" (MIG of {d['mig_of']})" if d["mig_of"] else ""
        holders = ", ".join(f"{h['user']} [{h['course']}, {h['share']}]"
                            for h in d["holders"]) or "free"
        lines.append(f"  {d['node']}/{d['uuid']} {d['name']}{slice_of}  {memory}  {holders}")
        for r in d["reservations"]:
            who = f"{r['user']} in {r['course']}" if r["user"] else r["course"]
            lines.append(f"    reserved {r['id']} for {who}: {r['start']} -> {r['end']}"
                         f"{' (now)' if r['active'] else ''}{' ' + r['note'] if r['note'] else ''}")
    return lines


def cmd_gpu_list(args) -> int:
    from classhub.gpu.admin import report

    gpus = report(_platform(args))
    print(json.dumps(gpus, indent=2) if args.json else "\n".join(_gpu_lines(gpus)))
    return 0


def cmd_gpu_reserve(args) -> int:
    from datetime import datetime, timezone

    from classhub.gpu.admin import reserve, when

    now = datetime.now(timezone.utc)
    made = reserve(_platform(args), args.course, args.count,
                   when(args.start, now) if args.start else now, when(args.until, now),
                   user=args.user, note=args.note or "")
    print(f"reservation {made.id}: {', '.join(str(k) for k in made.devices)} for "
          f"{made.user + ' in ' if made.user else ''}{made.course}, "
          f"{made.start.astimezone():%Y-%m-%d %H:%M} -> {made.end.astimezone():%Y-%m-%d %H:%M}")
    return 0


def cmd_gpu_release(args) -> int:
    platform = _platform(args)
    if args.reservation:
        from classhub.gpu.admin import cancel

        gone = cancel(platform, args.reservation)
        print(f"reservation {gone.id} of {gone.course} cancelled")
    if args.user:
        from classhub.hubapi import HubAPI

        HubAPI.for_platform(platform).stop_server(args.user)
        print(f"{args.user}'s server stopped; its GPU is free")
    return 0


def cmd_images_build(args) -> int:
    from classhub.images import build, default_say

    for recipe in build(_platform(args), args.courses or None, say=default_say):
        print(f"{recipe.tag}  ({recipe.pinned_tag})")
    return 0


def cmd_api_token(args) -> int:
    from classhub.hubapi import service_token

    print(service_token(StateDir(_platform(args).site.state_dir).ensure()))
    return 0


def _report_sync(synced: bool) -> None:
    print("hub groups updated" if synced
          else "the hub is not running: groups follow at the next `classhub up`")


def cmd_roster_add(args) -> int:
    from classhub.enrolment import Enrolment, Member
    from classhub.roster import check_username

    member = Member(check_username(args.username), args.name or "", args.email or "",
                    "instructor" if args.instructor else "student")
    handout, synced = Enrolment(_platform(args)).add(args.course, member)
    print(f"{member.username} enrolled in {args.course} as {member.role}")
    if handout:
        print(f"initial password written to {handout}")
    _report_sync(synced)
    return 0


def cmd_roster_remove(args) -> int:
    from classhub.enrolment import Enrolment

    _, synced = Enrolment(_platform(args)).remove(args.course, args.username)
    print(f"{args.username} removed from {args.course}")
    _report_sync(synced)
    return 0


def cmd_roster_import(args) -> int:
    from classhub.enrolment import Enrolment

    changes, handout, synced = Enrolment(_platform(args)).import_file(
        args.course, args.file, remove_missing=args.remove_missing
    )
    print(f"{args.course}: {changes.summary()}")
    if handout:
        print(f"initial passwords of new people written to {handout}")
    _report_sync(synced)
    return 0


def cmd_roster_list(args) -> int:
    from classhub.roster import Roster

    platform = _platform(args)
    if args.course not in platform.courses:
        raise ClasshubError(f"no course {args.course!r}")
    for member in Roster(StateDir(platform.site.state_dir).rosters, args.course).members().values():
        print(f"{member.username}\t{member.role}\t{member.name}\t{member.email}")
    return 0


def cmd_assignment(args) -> int:
    from classhub.coursework import lifecycle

    platform = _platform(args)
    step = args.assignment_verb
    if step == "collect":
        collected = lifecycle.collect(platform, args.course, args.assignment)
        for student, reason in collected.rejected:
            print(f"rejected: {student}: {reason}")
        print(f"{args.course}/{args.assignment}: collected")
        return 0
    output = getattr(lifecycle, step)(platform, args.course, args.assignment)
    if args.verbose:
        print(output)
    print(f"{args.course}/{args.assignment}: {step} done")
    return 0


def _course_dir_job(args):
    """`grade --course-dir PATH ASSIGNMENT`: limits and budgets from the flags."""
    from pathlib import Path

    from grading.batch import GradingJob, cell_timeout_from_config
    from grading.sandbox import Limits

    course_dir = Path(args.course_dir)
    if not course_dir.is_dir():
        raise ClasshubError(f"{course_dir}: no such folder")
    limits = Limits(mem_limit=args.memory, cpus=args.cpus, pids=args.pids,
                    cell_timeout_s=args.cell_timeout or cell_timeout_from_config(course_dir)
                    or 120, notebook_timeout_s=args.notebook_timeout)
    return GradingJob(course_dir, args.names[0], args.image, limits,
                      jobs=args.jobs or os.cpu_count() or 1, force=args.force,
                      students=args.student)


def cmd_grade(args) -> int:
    from grading.batch import grade, quiet_nbgrader
    from grading.summary import summary

    if len(args.names) != (1 if args.course_dir else 2):
        raise ClasshubError("usage: classhub grade COURSE ASSIGNMENT, or "
                            "classhub grade --course-dir PATH ASSIGNMENT")
    quiet_nbgrader()
    platform = None
    if args.course_dir:
        report = grade(_course_dir_job(args))
    else:
        from classhub.coursework.lifecycle import autograde

        platform = _platform(args)
        report = autograde(platform, *args.names, jobs=args.jobs, force=args.force,
                           students=args.student)
    print(summary(report))
    if report.interrupted:
        return 130
    if platform is not None and args.feedback:
        from classhub.coursework.lifecycle import feedback

        feedback(platform, *args.names)
        print(f"{'/'.join(args.names)}: feedback generated and released")
    return 1 if any(r.status == "error" for r in report.results) else 0


def cmd_export(args) -> int:
    if args.course_dir:
        from pathlib import Path

        from grading.export import export, pseudonym_key

        folder = Path(args.course_dir)
        if not (folder / "gradebook.db").is_file():
            raise ClasshubError(f"{folder}: no gradebook.db", "nothing was graded there")
        key = pseudonym_key(folder / ".classhub-grading" / "pseudonyms.key")
        files = export(folder, args.course_id or "", args.output, args.prefix or folder.name,
                       None, key)
    else:
        if not args.course:
            raise ClasshubError("usage: classhub export COURSE, or "
                                "classhub export --course-dir PATH")
        from classhub.coursework.lifecycle import export

        files = export(_platform(args), args.course, args.output)
    for name, path in files.items():
        print(f"{name}: {path}")
    return 0


def cmd_course_archive(args) -> int:
    from classhub.coursework.archive import archive

    manifest = archive(_platform(args), args.course, args.output)
    for name, path in manifest["files"].items():
        print(f"{name}: {path}")
    print(f"homes deleted: {', '.join(manifest['homes_deleted']) or 'none'}; kept (enrolled "
          f"elsewhere): {', '.join(manifest['homes_kept_other_course']) or 'none'}")
    return 0


def cmd_tls_init(args) -> int:
    from classhub import tls

    platform = _platform(args)
    made = tls.init(StateDir(platform.site.state_dir).ensure(), platform.site.name,
                    args.hostname)
    print(f"certificate: {made.certificate}\nkey: {made.key} (0600)\nthe room's CA: {made.ca} "
          "(install it in the room's browsers or trust store)")
    if not platform.site.tls.enabled:
        print("then set tls.enabled: true and an https:// hub.bind_url in the site config")
    return 0


ROTATABLE = {
    "cookie_secret": "signs login cookies: everyone logs in again",
    "proxy_token": "between the hub and the proxy",
    "api_token": "classhub's own service token (the CLI, scripts using `classhub api-token`)",
}


def cmd_secrets_rotate(args) -> int:
    import secrets as random

    from classhub import processes
    from classhub.state import write_private

    platform = _platform(args)
    state = StateDir(platform.site.state_dir)
    names = args.names or sorted(ROTATABLE)
    unknown = sorted(set(names) - set(ROTATABLE))
    if unknown:
        raise ClasshubError(f"cannot rotate {', '.join(unknown)}",
                            "rotatable: " + ", ".join(f"{k} ({v})" for k, v in ROTATABLE.items())
                            + "; the audit key and pseudonym keys are kept on purpose (old "
                            "entries must still verify, pseudonyms stay stable)")
    if processes.hub(state).running() or processes.proxy(state).running():
        raise ClasshubError("the platform is running", "`classhub down`, rotate, `classhub up`")
    for name in names:
        write_private(state.secrets / name, random.token_hex(32) + "\n")
        print(f"{name}: rotated ({ROTATABLE[name]})")
    if "api_token" in names and state.hub_db.exists():
        # The hub adds a service's configured token at start but keeps the ones it had: the
        # old token is revoked here, in the hub's database, while the hub is down.
        import sqlite3

        from classhub.hubapi import SERVICE_NAME

        db = sqlite3.connect(state.hub_db)
        try:
            with db:
                revoked = db.execute(
                    "DELETE FROM api_tokens WHERE service_id IN "
                    "(SELECT id FROM services WHERE name = ?)", (SERVICE_NAME,)).rowcount
        finally:
            db.close()
        print(f"api_token: {revoked} old token(s) revoked in the hub's database")
    return 0


def cmd_backup(args) -> int:
    from pathlib import Path

    from classhub.audit import record, whoami
    from classhub.backup import backup

    platform = _platform(args)
    state = StateDir(platform.site.state_dir)
    output = Path(args.output) if args.output else state.root / "backups"
    archive = backup(state, platform.site.name, output, keep=args.keep)
    record(state.root, whoami(), "backup.written", archive=str(archive))
    print(f"backup written: {archive} ({archive.stat().st_size / 2**20:.1f} MiB, 0600)")
    return 0


def cmd_restore(args) -> int:
    from pathlib import Path

    from classhub import processes
    from classhub.audit import record, whoami
    from classhub.backup import restore

    platform = _platform(args)
    state = StateDir(platform.site.state_dir)
    aside = restore(state, Path(args.archive), processes.hub(state).running())
    record(state.root, whoami(), "backup.restored", archive=str(args.archive),
           previous=str(aside) if aside else "")
    print(f"restored {args.archive} into {state.root}")
    if aside:
        print(f"the previous state directory is kept in {aside}")
    print("start the platform: classhub up")
    return 0


def cmd_audit_verify(args) -> int:
    from classhub.audit import AuditLog

    log = AuditLog(StateDir(_platform(args).site.state_dir))
    count, problems = log.verify()
    for problem in problems:
        print(f"{log.path}: {problem}")
    print(f"{count} entries; " + ("the chain is intact and ends at its anchor" if not problems
                                  else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


def cmd_audit_show(args) -> int:
    import datetime as dt

    from classhub.audit import AuditLog

    def moment(text):
        if not text:
            return None
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ClasshubError(f"not a date or time: {text!r}", "e.g. 2026-11-28 or "
                                "2026-11-28T14:00") from None
        return when if when.tzinfo else when.astimezone()

    log = AuditLog(StateDir(_platform(args).site.state_dir))
    for entry in log.entries(user=args.user, course=args.course, since=moment(args.since),
                             until=moment(args.until), action=args.action):
        if args.json:
            print(json.dumps(entry, ensure_ascii=False))
            continue
        where = f" [{entry['course']}]" if entry.get("course") else ""
        target = f" -> {entry['target']}" if entry.get("target") else ""
        details = json.dumps(entry.get("details") or {}, ensure_ascii=False)
        print(f"{entry['time']} #{entry['seq']} {entry['actor'] or '-'} {entry['action']}"
              f"{where}{target} {details}")
    return 0


def cmd_docs(args) -> int:
    from classhub.docs import config_reference

    text = config_reference()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="classhub", description=__doc__)
    top.add_argument("--version", action="version", version=f"classhub {__version__}")
    top.add_argument("--site", help="site config file (default: $CLASSHUB_SITE, "
                     "/etc/classhub/site.yaml, ./site.yaml)")
    verbs = top.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name, func, help_text, parent=verbs):
        p = parent.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    verb("check", cmd_check, "validate the site config and every course; start nothing")
    verb("up", cmd_up, "start the proxy and the hub (what runs already is kept)")
    verb("down", cmd_down, "stop every student server, the hub and the proxy")
    p = verb("serve", cmd_serve, "for systemd units: run the proxy or the hub in the foreground "
             "(prepared as `up` would), or settle once the hub answers (orphans removed, "
             "rosters in step)")
    p.add_argument("what", choices=["proxy", "hub", "settle"])
    p.add_argument("--wait-s", type=int, default=300, metavar="S",
                   help="settle: how long the hub may take to start and answer (the unit's "
                        "start timeout leaves it that long); default 300")
    p = verb("status", cmd_status, "what runs: hub, proxy, each student's server and resources")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    verb("api-token", cmd_api_token, "print classhub's admin-scoped API token (root only)")
    p = verb("docs", cmd_docs, "write the config reference generated from the model")
    p.add_argument("--output", "-o")

    images = verb("images", None, "course images").add_subparsers(dest="images_verb",
                                                                  required=True, metavar="VERB")
    p = verb("build", cmd_images_build, "build the base image and the course images "
             "(only what changed)", images)
    p.add_argument("courses", nargs="*", metavar="COURSE")

    assignment = verb("assignment", None, "an assignment's life, step by step").add_subparsers(
        dest="assignment_verb", required=True, metavar="VERB")
    for name, text in (
        ("release", "generate the student version from source/ and release it"),
        ("collect", "collect submissions (identity from the folder, time from the platform)"),
        ("feedback", "generate feedback and release it to each student"),
    ):
        p = verb(name, cmd_assignment, text, assignment)
        p.add_argument("course")
        p.add_argument("assignment")
        p.add_argument("--verbose", "-v", action="store_true", help="print nbgrader's output")
    p = verb("grade", cmd_grade, "grade every collected submission, each in its own sandbox "
             "(no network), in parallel, into the gradebook")
    p.add_argument("names", nargs="+", metavar="[COURSE] ASSIGNMENT")
    p.add_argument("--course-dir", help="grade this nbgrader course directory instead of a "
                   "course of the site (e.g. an archived course)")
    p.add_argument("--image", default="classhub/lab:latest",
                   help="with --course-dir: the image to run notebooks in")
    p.add_argument("--jobs", "-j", type=int, help="sandboxes at a time (default: CPU count)")
    p.add_argument("--force", action="store_true", help="regrade submissions already graded")
    p.add_argument("--student", action="append", help="only this student (repeatable)")
    p.add_argument("--feedback", action="store_true",
                   help="then generate and release feedback (site courses)")
    for flag, default, text in (("--memory", "2g", "memory per sandbox"),
                                ("--cpus", 1.0, "CPUs per sandbox"),
                                ("--pids", 256, "processes per sandbox"),
                                ("--cell-timeout", None, "seconds per cell (default: the course "
                                 "directory's nbgrader config, else 120)"),
                                ("--notebook-timeout", 600, "seconds per notebook")):
        p.add_argument(flag, default=default, help=f"with --course-dir: {text}",
                       type=type(default) if default is not None else int)
    course_verbs = verb("course", None, "a course as a whole").add_subparsers(
        dest="course_verb", required=True, metavar="VERB")
    p = verb("archive", cmd_course_archive, "export grades and keep all submissions in an "
             "archive, then delete student homes as the course's retention says", course_verbs)
    p.add_argument("course")
    p.add_argument("--output", "-o", required=True, help="folder for the archive")
    gpu = verb("gpu", None, "the node's GPUs: who holds them, reservations").add_subparsers(
        dest="gpu_verb", required=True, metavar="VERB")
    p = verb("list", cmd_gpu_list, "every GPU with its holders, memory in use and "
             "reservations", gpu)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = verb("reserve", cmd_gpu_reserve, "set GPUs aside for a course (or one of its "
             "instructors) for a time window", gpu)
    p.add_argument("course")
    p.add_argument("--count", type=int, default=1, help="how many GPUs (or MIG slices)")
    p.add_argument("--from", dest="start", help="start: +30m, +2h, +1d or an ISO time "
                   "(default: now)")
    p.add_argument("--until", required=True, help="end: +2h or an ISO time")
    p.add_argument("--for", dest="user", help="only this person may use them")
    p.add_argument("--note", help="shown with the reservation (e.g. the lab session)")
    p = verb("release", cmd_gpu_release, "cancel a reservation, or stop a person's server to "
             "free their GPU", gpu)
    release = p.add_mutually_exclusive_group(required=True)
    release.add_argument("--reservation", metavar="ID")
    release.add_argument("--user", metavar="NAME")
    tls_verbs = verb("tls", None, "HTTPS for the room").add_subparsers(
        dest="tls_verb", required=True, metavar="VERB")
    p = verb("init", cmd_tls_init, "make the room's CA (once) and a server certificate for "
             "these names", tls_verbs)
    p.add_argument("--hostname", action="append", required=True,
                   help="DNS name or IP address people use (repeatable)")
    secret_verbs = verb("secrets", None, "the platform's generated secrets").add_subparsers(
        dest="secrets_verb", required=True, metavar="VERB")
    p = verb("rotate", cmd_secrets_rotate, "replace generated secrets (platform down)",
             secret_verbs)
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"among {', '.join(sorted(ROTATABLE))} (default: all)")
    p = verb("backup", cmd_backup, "back up the hub database, accounts, gradebooks, exchange, "
             "homes, rosters, secrets and audit trail to one file (SQLite online backup)")
    p.add_argument("--output", "-o", help="folder for the backup (default: <state>/backups; "
                   "put it on another disk)")
    p.add_argument("--keep", type=int, help="keep only the N newest backups there")
    p = verb("restore", cmd_restore, "restore a backup into the state directory (the hub "
             "must be down; the current state is put aside, not deleted)")
    p.add_argument("archive")
    audit = verb("audit", None, "the audit trail: who did what, when").add_subparsers(
        dest="audit_verb", required=True, metavar="VERB")
    verb("verify", cmd_audit_verify, "check that no entry was edited, removed, reordered or "
         "cut from the end (exit 1 if one was)", audit)
    p = verb("show", cmd_audit_show, "print entries, filtered", audit)
    p.add_argument("--user", help="entries by or about this person")
    p.add_argument("--course")
    p.add_argument("--action", help="entries whose action starts with this (e.g. login)")
    p.add_argument("--since", help="ISO date or time")
    p.add_argument("--until", help="ISO date or time")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p = verb("export", cmd_export, "grades as CSV: per question, totals, Moodle import, and a "
             "pseudonymised variant")
    p.add_argument("course", nargs="?")
    p.add_argument("--output", "-o", default=".", help="folder for the CSV files")
    p.add_argument("--course-dir", help="export from this nbgrader course directory")
    p.add_argument("--course-id", help="with --course-dir: the gradebook's course id")
    p.add_argument("--prefix", help="with --course-dir: file name prefix (default: its name)")

    roster = verb("roster", None, "who attends and who teaches each course").add_subparsers(
        dest="roster_verb", required=True, metavar="VERB")
    p = verb("add", cmd_roster_add, "enrol one person (creates their login if new)", roster)
    p.add_argument("course")
    p.add_argument("username")
    p.add_argument("--instructor", action="store_true", help="enrol as instructor")
    p.add_argument("--name")
    p.add_argument("--email")
    p = verb("remove", cmd_roster_remove, "take one person out of a course", roster)
    p.add_argument("course")
    p.add_argument("username")
    p = verb("import", cmd_roster_import, "import a university export (CSV: id, name, email)",
             roster)
    p.add_argument("course")
    p.add_argument("file")
    p.add_argument("--remove-missing", action="store_true",
                   help="also remove roster members absent from the file")
    p = verb("list", cmd_roster_list, "print a course's roster", roster)
    p.add_argument("course")
    return top


UNAUDITED = {"check", "status", "docs"}  # read-only and harmless


def _audit(args, rc: int) -> None:
    platform = getattr(args, "loaded_platform", None)
    if platform is None or args.verb in UNAUDITED:
        return
    from classhub.audit import record, whoami

    words = [args.verb] + [getattr(args, f"{args.verb}_verb", None) or ""]
    details = {k: v for k, v in vars(args).items()
               if k not in {"func", "loaded_platform", "site", "verb", f"{args.verb}_verb"}
               and v not in (None, False, [], "")}
    record(platform.site.state_dir, whoami(), "cli." + ".".join(w for w in words if w),
           course=str(details.pop("course", "") or ""), rc=rc,
           **{k: v if isinstance(v, (str, int, float, bool, list)) else str(v)
              for k, v in details.items()})


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    rc = 2
    try:
        rc = args.func(args)
        return rc
    except ClasshubError as exc:
        print(f"classhub: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        rc = 130
        return rc
    finally:
        _audit(args, rc)


if __name__ == "__main__":
    sys.exit(main())
