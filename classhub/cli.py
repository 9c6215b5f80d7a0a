"""The `classhub` command: a list of idempotent verbs over one validated site."""

from __future__ import annotations

import argparse
import json
import sys

from classhub import __version__
from classhub.config import load_platform
from classhub.errors import ClasshubError
from classhub.state import StateDir


def _platform(args):
    return load_platform(args.site)


def cmd_check(args) -> int:
    platform = _platform(args)
    print(f"{platform.site_file}: valid; courses: {', '.join(sorted(platform.courses)) or 'none'}")
    return 0


def cmd_up(args) -> int:
    from classhub.platform import up

    started = up(_platform(args))
    print(f"classhub is up: {started.url}")
    for admin, path in started.admin_passwords.items():
        print(f"  log in as {admin!r}; the initial password is in {path} (root only)")
    print("  enrol people: classhub roster add COURSE USERNAME  (their passwords go to a handout "
          "file for the instructor)")
    return 0


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
    print(f"servers running: {len(report['servers'])}")
    for s in report["servers"]:
        print(f"  {s['user']:<20} {s['course']:<16} {s['image']:<24} "
              f"mem {_size(s.get('memory_bytes'))}/{_size(s.get('mem_limit_bytes'))}  "
              f"cpu {s['cpu_limit']:g}  pids {s.get('pids', '-')}/{s.get('pids_limit')}")
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


def cmd_grades_export(args) -> int:
    from classhub.coursework.lifecycle import export

    for name, path in export(_platform(args), args.course, args.output).items():
        print(f"{name}: {path}")
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
        ("autograde", "run the autograder tests of every collected submission"),
        ("feedback", "generate feedback and release it to each student"),
    ):
        p = verb(name, cmd_assignment, text, assignment)
        p.add_argument("course")
        p.add_argument("assignment")
        p.add_argument("--verbose", "-v", action="store_true", help="print nbgrader's output")
    grades = verb("grades", None, "grades").add_subparsers(dest="grades_verb", required=True,
                                                           metavar="VERB")
    p = verb("export", cmd_grades_export, "per-question and total grades, and a Moodle import "
             "file (CSV)", grades)
    p.add_argument("course")
    p.add_argument("--output", "-o", default=".", help="folder for the CSV files")

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


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ClasshubError as exc:
        print(f"classhub: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
