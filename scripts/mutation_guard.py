"""Mutation guards: prove that the tests behind the core promises notice when they break.

Each mutation below is a small, hand-written change that breaks one promise (the
saved-means-saved order of an export, the single fenced writer, owner checks, the
per-request sync status...). For each one, this script copies the working tree
(tracked files and untracked files git does not ignore) into a scratch folder, applies
the mutation there, and runs the few tests chosen to catch it. Every mutation must make
them fail; one that survives is a hole in the tests.

Run it after the main suite (which proves the same tests pass on the real code), with
the test services up (``scripts/test-services.sh``: Redis, PostgreSQL)::

    .venv/bin/python scripts/mutation_guard.py              # every mutation
    .venv/bin/python scripts/mutation_guard.py --list       # what they are
    .venv/bin/python scripts/mutation_guard.py --only commit-ignores-fence --json out.json

It prints a markdown table and exits 1 if any mutation was not caught or its run went
wrong (a timeout, a collection error, errors only in set-up), 2 if a mutation's
``old`` snippet no longer occurs exactly once in its file (the code moved: update the
mutation). Your own repository is never modified.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The slow and special suites never run here: they need browsers or a cluster, and the
# fault suite takes many minutes.
MARKERS = "not browser and not cluster and not fault"
DEFAULT_TIMEOUT = 180  # seconds per mutation: a hang is an error, never "caught"
PLUGIN_NAME = "_mutation_guard_plugin"
# pytest's short summary ("FAILED path::test - reason"), not log lines saying ERROR.
SUMMARY_LINE = re.compile(r"^(FAILED|ERROR) \S+\.py(::|\s|$)")


# What catches a broken order of an export's end (row, commit, "complete"): the
# end-to-end export first, the fastest, where "complete" must name a committed version
# that holds the video; then a store outage at finalize, which must never end complete.
# With -x the second runs only when the first let the mutation through.
EXPORT_ORDER_TESTS = (
    "exports/tests/test_export_flow.py::test_a_framing_export_end_to_end",
    "exports/tests/test_export_outcomes.py::"
    "test_a_store_failure_at_finalize_is_never_complete_and_a_retry_completes",
)


@dataclass(frozen=True)
class Mutation:
    name: str  # the promise it breaks, as a short slug
    promise: str  # one line: what the mutated code does wrong
    path: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]  # pytest node ids / files, as few and fast as still catch it
    keyword: str = ""  # an optional ``-k`` expression
    timeout: int = DEFAULT_TIMEOUT


MUTATIONS = (
    Mutation(
        name="finalize-never-pushes",
        promise="an export's video row is written but never pushed; the job is still complete",
        path="exports/finalize.py",
        old="""\
    with sync.writing(job.user_id) as outcome:
""",
        new="""\
    # MUTATION: leased, bound and tracked like sync.writing(), but nothing is pushed,
    # and the outcome says "committed" at the version that was already committed.
    outcome = sync.WriteOutcome()
    with leases.lease(job.user_id), sync.bound_to_user(job.user_id), sync.track_writes():
        row = sync.ensure_fresh(job.user_id)
        version = row.version if row else 0
        outcome.results[job.user_id] = sync.SyncResult(job.user_id, sync.Status.OK, version)
""",
        tests=EXPORT_ORDER_TESTS,
    ),
    Mutation(
        name="finalize-row-after-push",
        promise="an export pushes first and writes its video row after, so the commit lacks it",
        path="exports/finalize.py",
        old="""\
            raise FinalizeError("The project was deleted during the export.", "project_gone", False)
        if job.kind == "framing":
            video_id = _record_working_video(job, project, output_name, result)
        else:
            video_id = _record_final_video(job, project, output_name, result)
""",
        new="""\
            raise FinalizeError("The project was deleted during the export.", "project_gone", False)
    # MUTATION: the row is written (leased and bound) once the block has pushed.
    with leases.lease(job.user_id), sync.bound_to_user(job.user_id):
        if job.kind == "framing":
            video_id = _record_working_video(job, project, output_name, result)
        else:
            video_id = _record_final_video(job, project, output_name, result)
""",
        tests=EXPORT_ORDER_TESTS,
    ),
    Mutation(
        name="write-without-lease",
        promise="a write request runs its view without taking the user's lease",
        path="syncstore/middleware.py",
        old="""\
                stack.enter_context(leases.lease(user_id))
""",
        new="""\
                stack.enter_context(ExitStack())  # MUTATION: a no-op instead of the lease
""",
        tests=(
            "syncstore/tests/test_single_writer.py::test_a_second_write_waits_for_the_first_while_reads_go_on",
        ),
    ),
    Mutation(
        name="complete-before-finalize",
        promise="an export job is marked complete before its video is finalized",
        path="exports/runner.py",
        old="""\
    with attempt.heartbeat():  # a lost attempt stops here: finalizing is not its to do
""",
        new="""\
    # MUTATION: "complete" is written and announced first, then the video finalized
    # (with no heartbeat: its first beat would stop a job no longer processing).
    _finish(
        job, attempt, Status.COMPLETE, phase="complete", message="Export complete",
        percent=100,
    )
    with ExitStack():
""",
        # The outage test first: it fails on the order itself ("complete" while the
        # commit fails), the end-to-end one may only trip over the missing video id.
        tests=EXPORT_ORDER_TESTS[::-1],
    ),
    Mutation(
        name="media-without-owner-check",
        promise="/media/<name> serves another user's file",
        path="projects/media.py",
        old="""\
    if owner is None or owner not in allowed_user_ids or not default_storage.exists(name):
""",
        new="""\
    if owner is None or not default_storage.exists(name):  # MUTATION: no owner check
""",
        tests=("projects/tests/test_isolation.py::test_bob_gets_404_for_alices_media",),
    ),
    Mutation(
        name="export-api-without-owner-check",
        promise="the export job API answers for another user's job id",
        path="exports/api.py",
        old="""\
    job = get_object_or_404(ExportJob, pk=job_id, user=request.user)
""",
        new="""\
    job = get_object_or_404(ExportJob, pk=job_id)  # MUTATION: no owner check
""",
        tests=("exports/tests/test_export_api.py::test_other_users_jobs_do_not_exist_for_them",),
    ),
    Mutation(
        name="export-socket-without-owner-check",
        promise="the export WebSocket lets another user watch a job",
        path="exports/consumers.py",
        old="""\
            return ExportJob.objects.filter(pk=uuid.UUID(job_id), user=user).exists()
""",
        new="""\
            return ExportJob.objects.filter(pk=uuid.UUID(job_id)).exists()  # MUTATION
""",
        tests=("exports/tests/test_export_flow.py::test_another_users_websocket_is_refused",),
    ),
    Mutation(
        name="store-error-is-no-snapshot",
        promise="a store error while fetching a committed version yields an empty database",
        path="syncstore/sync.py",
        old="""\
    except StoreError as exc:
        raise SyncUnavailable(f"the snapshot store is unreachable: {exc}") from exc
""",
        new="""\
    except StoreError:  # MUTATION: an unreachable store reads as "no snapshot yet"
        dest.unlink(missing_ok=True)
        userdb.create_from_template(dest)
        return Downloaded(changecounter.read_file(dest), exact=False)
""",
        tests=(
            "syncstore/tests/test_sync_requests.py::test_a_store_error_on_first_access_is_not_a_new_user",
        ),
    ),
    Mutation(
        name="commit-ignores-fence",
        promise="the commit's compare-and-set ignores the lease's fencing number",
        path="syncstore/sync.py",
        old="""\
        updated = SyncState.objects.filter(user_id=user_id, version=expected, fence=fence).update(
""",
        new="""\
        updated = SyncState.objects.filter(user_id=user_id, version=expected).update(  # MUTATION
""",
        tests=(
            "syncstore/tests/test_saved_means_saved.py::test_a_writer_whose_lease_was_taken_over_cannot_commit",
        ),
    ),
    Mutation(
        name="failed-push-answers-ok",
        promise="a write whose push failed answers X-Sync-Status: ok",
        path="syncstore/middleware.py",
        old="""\
            response["X-Sync-Status"] = sync.Status.FAILED if failed else sync.Status.OK
""",
        new="""\
            response["X-Sync-Status"] = sync.Status.OK  # MUTATION: the failure is not said
""",
        tests=(
            "syncstore/tests/test_sync_requests.py::test_a_store_outage_keeps_the_write_and_a_retry_commits_it",
        ),
    ),
    Mutation(
        name="media-deleted-before-commit",
        promise="a clip's file is deleted with its row, before the deletion is committed",
        path="projects/media.py",
        old="""\
    mediagc.drop_after_commit(names, using=using)
""",
        new="""\
    for name in names:  # MUTATION: gone at once, whatever becomes of the deletion
        default_storage.delete(name)
""",
        tests=(
            "syncstore/tests/test_saved_means_saved.py::test_a_deletion_that_was_never_committed_keeps_the_clips_file",
        ),
    ),
    Mutation(
        name="sign-in-unthrottled",
        promise="wrong passwords are never counted: a guesser tries forever",
        path="reeleditor/settings.py",
        old="""\
    "axes.backends.AxesStandaloneBackend",
""",
        new="""\
    # MUTATION: no throttling backend
""",
        tests=(
            "accounts/tests/test_signin_throttle.py::test_wrong_passwords_lock_the_account_and_say_so",
        ),
    ),
    Mutation(
        name="sign-up-unlimited",
        promise="one address makes as many accounts as it likes",
        path="accounts/signup.py",
        old="""\
    return recent > settings.SIGNUP_LIMIT
""",
        new="""\
    return False  # MUTATION: never too many
""",
        tests=(
            "accounts/tests/test_signup_limit.py::test_an_address_past_the_limit_is_refused_and_no_account_is_made",
        ),
    ),
    Mutation(
        name="commit-clears-the-lease-early",
        promise="every commit clears the lease's claim, also for a holder that goes on writing",
        path="syncstore/sync.py",
        old="""\
    if not lease.ends_with_commit:
        return {}
""",
        new="""\
    if False:  # MUTATION: the claim is cleared by any commit
        return {}
""",
        tests=(
            "syncstore/tests/test_request_path.py::test_a_holder_that_goes_on_after_a_commit_still_holds_the_lease",
        ),
    ),
    Mutation(
        name="play-clip-drops-the-game",
        promise="deleting a clip made from a play deletes the game's video it names",
        path="projects/api.py",
        old="""\
            if clip.owns_file:  # a game's clip leaves the game's video alone
                media.delete_after_commit([clip.file], using=alias)
""",
        new="""\
            media.delete_after_commit([clip.file], using=alias)  # MUTATION: any clip's file
""",
        tests=(
            "games/tests/test_reels_from_plays.py::test_a_game_its_clips_use_cannot_be_deleted_and_keeps_its_file",
        ),
    ),
    Mutation(
        name="restore-lets-gc-drop-its-media",
        promise="restoring a version keeps the media files its rows name",
        path="syncstore/history.py",
        old="""\
        mediagc.keep(user_id, names)
""",
        new="""\
        pass  # MUTATION: the deletions queued by later versions still run
""",
        tests=("syncstore/tests/test_history.py::test_media_of_a_restored_version_stay",),
    ),
    Mutation(
        name="revoked-share-link-still-serves",
        promise="a revoked or expired share link answers 404 on every route",
        path="sharing/links.py",
        old="""\
    return ShareLink.objects.live().filter(token=token).first()
""",
        new="""\
    return ShareLink.objects.filter(token=token).first()  # MUTATION: any link, live or not
""",
        tests=(
            "sharing/tests/test_share_links.py::test_a_revoked_link_is_gone_on_every_route",
            "sharing/tests/test_share_links.py::test_revoke_and_expiry_hold_for_head_and_range_requests_too",
        ),
    ),
)


# A pytest plugin loaded in the scratch copy's run. It refuses to run unless the code
# under test is the scratch copy's (a stray PYTHONPATH or an installed copy of the
# project would make every mutation "survive"), and writes what happened to a JSON
# file: a return code alone cannot tell failed tests from errors in set-up.
PLUGIN_SOURCE = """\
import json
import os
import sys
from pathlib import Path

import pytest

SCRATCH = Path(os.environ["MUTATION_GUARD_SCRATCH"]).resolve()
PACKAGES = ("projects", "exports", "syncstore", "reeleditor")
counts = {"collected": 0, "passed": 0, "failed": 0, "setup_errors": 0, "collect_errors": 0}


def pytest_collectreport(report):
    if report.failed:
        counts["collect_errors"] += 1


def pytest_collection_finish(session):
    counts["collected"] = len(session.items)
    if Path(session.config.rootpath).resolve() != SCRATCH:
        raise pytest.UsageError(f"rootdir is {session.config.rootpath}, not {SCRATCH}")
    for name in PACKAGES:
        module = sys.modules.get(name)
        where = Path(getattr(module, "__file__", None) or "/").resolve()
        if module is None or not where.is_relative_to(SCRATCH):
            raise pytest.UsageError(f"{name} was imported from {where}, not {SCRATCH}")


def pytest_runtest_logreport(report):
    if report.when == "call" and report.failed:
        counts["failed"] += 1
    elif report.when == "call" and report.passed:
        counts["passed"] += 1
    elif report.failed:  # set-up or tear-down: maybe the mutation, maybe a service down
        counts["setup_errors"] += 1


def pytest_sessionfinish(session, exitstatus):
    Path(os.environ["MUTATION_GUARD_REPORT"]).write_text(json.dumps(counts))
"""


@dataclass
class Outcome:
    name: str
    path: str
    tests: list[str]  # the pytest arguments that select them (node ids, -k)
    caught: bool
    seconds: float
    problem: str = ""  # why the run does not count (timeout, collection error...)
    counts: dict = field(default_factory=dict)
    summary: list = field(default_factory=list)  # pytest's FAILED/ERROR summary lines
    output_tail: str = ""


def snippet_problems(mutations) -> list[str]:
    """Every mutation whose ``old`` snippet does not occur exactly once in its file."""
    problems = []
    for mutation in mutations:
        path = ROOT / mutation.path
        if not path.exists():
            problems.append(f"{mutation.name}: {mutation.path} does not exist")
            continue
        found = path.read_text().count(mutation.old)
        if found != 1:
            problems.append(
                f"{mutation.name}: its snippet occurs {found} times in {mutation.path} "
                f"(must be exactly once); the code moved: update the mutation.\n"
                f"--- snippet ---\n{mutation.old}---------------"
            )
    return problems


def working_tree_files() -> list[str]:
    """Tracked files and untracked files git does not ignore: what a commit would hold."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    return sorted({name for name in listed.decode().split("\0") if name})


def copy_tree(files, dest: Path) -> None:
    for name in files:
        source = ROOT / name
        if not source.exists() and not source.is_symlink():  # deleted, not yet committed
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)


def apply(mutation: Mutation, scratch: Path) -> None:
    path = scratch / mutation.path
    text = path.read_text()
    assert text.count(mutation.old) == 1, f"{mutation.name}: snippet changed during the run"
    path.write_text(text.replace(mutation.old, mutation.new))


def pytest_command(mutation: Mutation) -> list[str]:
    # The virtualenv's interpreter (this one) with the scratch copy as working
    # directory: ``-m pytest`` puts it first on sys.path, and the plugin checks it.
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    command += ["-p", PLUGIN_NAME, "-m", MARKERS]
    if mutation.keyword:
        command += ["-k", mutation.keyword]
    return command + list(mutation.tests)


def run_tests(mutation: Mutation, scratch: Path) -> tuple[int | None, str, dict, float]:
    """Run the mutation's tests in ``scratch``; (return code or None on timeout, output,
    the plugin's counts, seconds)."""
    report = scratch / ".mutation-guard-report.json"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    env.update(MUTATION_GUARD_SCRATCH=str(scratch), MUTATION_GUARD_REPORT=str(report))
    env["COLUMNS"] = "250"  # wide enough for the summary lines to keep their reason
    started = time.monotonic()
    # A session of its own: on a timeout the whole group (moto, daphne, workers) goes.
    process = subprocess.Popen(
        pytest_command(mutation),
        cwd=scratch,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=mutation.timeout)
        returncode = process.returncode
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        output, _ = process.communicate()
        returncode = None
    finally:  # also on Ctrl-C, and whatever the run left behind (a server it started)
        _kill_group(process.pid)
    seconds = time.monotonic() - started
    counts = json.loads(report.read_text()) if report.exists() else {}
    return returncode, output, counts, seconds


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # nothing of that run is left
        os.killpg(pid, signal.SIGKILL)


def judge(returncode, counts, timeout) -> tuple[bool, str]:
    """(caught, problem): only tests that fail in their own body count as caught."""
    if returncode is None:
        return False, f"timed out after {timeout} s"
    if counts.get("collect_errors"):
        return False, "collection error"
    if returncode == 0:
        return False, ""  # the tests passed with the mutation in: it survived
    if returncode == 1 and counts.get("failed"):
        return True, ""
    if returncode == 1:
        return False, "errors in set-up or tear-down only, no test failed"
    if returncode == 5:
        return False, "the selection collected no test"
    return False, f"pytest exited {returncode}"


def guard(mutation: Mutation, files, keep: bool) -> Outcome:
    scratch = Path(tempfile.mkdtemp(prefix=f"mutation-guard-{mutation.name}-"))
    try:
        copy_tree(files, scratch)
        (scratch / f"{PLUGIN_NAME}.py").write_text(PLUGIN_SOURCE)
        apply(mutation, scratch)
        returncode, output, counts, seconds = run_tests(mutation, scratch)
    finally:
        if keep:
            print(f"  scratch copy kept: {scratch}", flush=True)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    caught, problem = judge(returncode, counts, mutation.timeout)
    tests = list(mutation.tests) + ([f"-k {mutation.keyword}"] if mutation.keyword else [])
    summary = [line for line in output.splitlines() if SUMMARY_LINE.match(line)]
    tail = "" if caught else output[-4000:]
    return Outcome(
        mutation.name, mutation.path, tests, caught, seconds, problem, counts, summary, tail
    )


def table(outcomes) -> str:
    lines = ["| mutation | file | tests run | caught | seconds |", "|---|---|---|---|---|"]
    for o in outcomes:
        verdict = "yes" if o.caught else ("ERROR: " + o.problem if o.problem else "NO")
        tests = "<br>".join(f"`{t}`" for t in o.tests)
        lines.append(f"| {o.name} | {o.path} | {tests} | {verdict} | {o.seconds:.0f} |")
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run this mutation")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--json", metavar="PATH", help="also write the outcomes here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    return parser.parse_args(argv)


def selected(only) -> list[Mutation]:
    if not only:
        return list(MUTATIONS)
    by_name = {m.name: m for m in MUTATIONS}
    unknown = [name for name in only if name not in by_name]
    if unknown:
        sys.exit(f"unknown mutation(s): {', '.join(unknown)} (see --list)")
    return [by_name[name] for name in only]


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:36} {m.path:26} {m.promise}")
        return 0
    mutations = selected(args.only)
    # Checked before anything runs: a refactor that moved the code fails CI at once.
    problems = snippet_problems(mutations)
    if problems:
        print("mutation guard is out of date:\n\n" + "\n\n".join(problems), file=sys.stderr)
        return 2
    files = working_tree_files()
    started = time.monotonic()
    outcomes = []
    for mutation in mutations:
        print(f"mutation {mutation.name}: {mutation.promise} ...", flush=True)
        outcome = guard(mutation, files, args.keep)
        outcomes.append(outcome)
        verdict = "caught" if outcome.caught else (outcome.problem or "NOT CAUGHT")
        print(f"  {verdict} ({outcome.seconds:.0f} s)", flush=True)
        # The failures say *why* it was caught: a reviewer can tell a real catch from
        # a test that broke for another reason.
        for line in outcome.summary:
            print(f"    {line}", flush=True)
        if not outcome.caught:
            print(outcome.output_tail, flush=True)
    total = time.monotonic() - started
    print()
    print(table(outcomes))
    print(f"\n{sum(o.caught for o in outcomes)}/{len(outcomes)} caught in {total:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(o) for o in outcomes], indent=2) + "\n")
    return 0 if all(o.caught for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
