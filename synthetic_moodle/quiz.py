"""Quiz: quizzes, learners' attempts in every state, previews, regrades and best grades."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from synthetic_moodle.people import _course_names
from synthetic_moodle.spec import (
    ADMIN_USER_ID,
    GUEST_USER_ID,
    SITE_COURSE_ID,
    _Activity,
    _activity_added,
    _fit_in_day,
    _Site,
)


@dataclass(frozen=True)
class _QuizTemplate:
    """Quiz settings that matter to the feed: raw marks (`sumgrades`), the grade they are scaled
    to, decimal points, the pass mark (grade item `gradepass`, 0 = none) and the time limit."""

    key: str
    suffix: str
    sumgrades: Decimal
    grade: Decimal
    decimalpoints: int
    gradepass: Decimal
    slots: int
    timelimit: int = 0
    essay: bool = False
    opens_after_window: bool = False


_QUIZ_ASSESSMENT = _QuizTemplate(
    "assessment", "assessment", Decimal(10), Decimal(100), 1, Decimal(80), 10, 3600, essay=True
)
_QUIZ_CHECK = _QuizTemplate("check", "knowledge check", Decimal(20), Decimal(10), 2, Decimal(0), 20)
_QUIZ_NO_MARKS = _QuizTemplate(
    "reflection", "reflection (not marked)", Decimal(0), Decimal(10), 0, Decimal(0), 3
)
_QUIZ_FINAL = _QuizTemplate("final", "final test", Decimal(8), Decimal(100), 0, Decimal(50), 8)
_QUIZ_UPCOMING = _QuizTemplate(
    "upcoming", "refresher", Decimal(10), Decimal(10), 2, Decimal(7), 10, opens_after_window=True
)
_SITE_QUIZ = _QuizTemplate(
    "welcome", "Learning Hub welcome quiz", Decimal(5), Decimal(10), 2, Decimal(0), 5
)
_FIRST_COURSE_QUIZZES = (_QUIZ_ASSESSMENT, _QUIZ_CHECK, _QUIZ_NO_MARKS, _QUIZ_FINAL, _QUIZ_UPCOMING)
_OTHER_COURSE_QUIZZES = (_QUIZ_CHECK, _QUIZ_FINAL, _QUIZ_ASSESSMENT)


@dataclass(frozen=True)
class _Quiz:
    id: int
    course_id: int
    name: str
    template: _QuizTemplate
    added: int
    timeopen: int


@dataclass(frozen=True)
class _QuizAttempt:
    """One attempt as the site holds it. `flow` says how it differs by release: 'pending' is
    still `submitted` (ungraded) on 5.0+ but graded on submission before; 'graded_by_task' is
    graded by 5.0's ad-hoc task minutes after submission; 'precreated' exists only on 5.0+."""

    quiz: _Quiz
    userid: int
    attempt: int
    state: str
    timestart: int
    timefinish: int
    timemodified: int
    sumgrades: Decimal | None
    preview: int = 0
    timecheckstate: int | None = None
    currentpage: int = 0
    graded_at: int | None = None
    flow: str = ""
    created: int = 0


def _fill_quizzes(site: _Site) -> None:
    """Quizzes with their grade items (pass marks), learners' attempts in every state, previews,
    a regrade and a manual grading on a later day, and the best grade per learner."""
    rng = site.rng("quiz")
    quizzes = _quizzes(site)
    site.copy_release_records("quiz", (_quiz_record(site, q) for q in quizzes))
    for q in quizzes:
        t = q.template
        site.activities.append(
            _Activity("quiz", q.id, q.course_id, q.name, q.added, 2, t.grade, t.gradepass)
        )
    planned = _quiz_attempts(site, rng, quizzes)
    attempts = [a for a in map(functools.partial(_attempt_on_release, site), planned) if a]
    attempts.sort(key=lambda a: (a.created, a.quiz.id, a.userid))
    with_notifications = site.release_at_least("4.0")
    site.copy_release_records(
        "quiz_attempts",
        (_attempt_record(n, a, with_notifications) for n, a in enumerate(attempts, start=1)),
    )
    site.copy_records("quiz_grades", _quiz_grades(attempts))


def _quizzes(site: _Site) -> list[_Quiz]:
    plan = [(site.course_ids[0], t) for t in _FIRST_COURSE_QUIZZES]
    plan += [
        (c, _OTHER_COURSE_QUIZZES[n % len(_OTHER_COURSE_QUIZZES)])
        for n, c in enumerate(site.course_ids[1:])
    ]
    plan.append((SITE_COURSE_ID, _SITE_QUIZ))
    opens = site.calendar.at(site.activity_days[-1] + datetime.timedelta(days=3), 9)
    quizzes = []
    for quiz_id, (course_id, template) in enumerate(plan, start=1):
        if course_id == SITE_COURSE_ID:
            name = f"{site.organisation} {template.suffix}"
        else:
            name = f"{_course_names(site, course_id)[0]}: {template.suffix}"
        added = _activity_added(course_id, site, 3, quiz_id % 5)
        timeopen = opens if template.opens_after_window else 0
        quizzes.append(_Quiz(quiz_id, course_id, name, template, added, timeopen))
    return quizzes


_REVIEW_ALWAYS = 0x11110  # during, immediately after, later while open, after close
_REVIEW_AFTER = 0x01110


def _quiz_record(site: _Site, quiz: _Quiz) -> dict[str, object]:
    t = quiz.template
    return {
        "id": quiz.id,
        "course": quiz.course_id,
        "name": quiz.name,
        "intro": f"<p>{quiz.name}.</p>",
        "introformat": 1,
        "timeopen": quiz.timeopen,
        "timeclose": 0,
        "timelimit": t.timelimit,
        "overduehandling": "graceperiod" if t.timelimit else "autoabandon",
        "graceperiod": 86400 if t.timelimit else 0,
        "preferredbehaviour": "deferredfeedback",
        "canredoquestions": 0,
        "attempts": 0,
        "attemptonlast": 0,
        "grademethod": 1,
        "decimalpoints": t.decimalpoints,
        "questiondecimalpoints": -1,
        "reviewattempt": _REVIEW_ALWAYS,
        "reviewcorrectness": _REVIEW_AFTER,
        "reviewmaxmarks": _REVIEW_ALWAYS,
        "reviewmarks": _REVIEW_AFTER,
        "reviewspecificfeedback": _REVIEW_AFTER,
        "reviewgeneralfeedback": _REVIEW_AFTER,
        "reviewrightanswer": _REVIEW_AFTER,
        "reviewoverallfeedback": _REVIEW_AFTER,
        "questionsperpage": 1,
        "navmethod": "free",
        "shuffleanswers": 1,
        "sumgrades": t.sumgrades,
        "grade": t.grade,
        "timecreated": quiz.added,
        "timemodified": quiz.added,
        "password": "",
        "subnet": "",
        "browsersecurity": "-",
        "delay1": 0,
        "delay2": 0,
        "showuserpicture": 0,
        "showblocks": 0,
        "completionattemptsexhausted": 0,
        "completionpass": 0,
        "completionminattempts": 0,
        "allowofflineattempts": 0,
        "precreateattempts": 1 if t.opens_after_window else None,
    }


def _quiz_attempts(site: _Site, rng: random.Random, quizzes: list[_Quiz]) -> list[_QuizAttempt]:
    first = {q.template.key: q for q in quizzes if q.course_id == site.course_ids[0]}
    named = _named_quiz_attempts(site, rng, first)
    forced = {(a.quiz.id, a.userid) for a in named}
    attempts = list(named)
    for quiz in quizzes:
        if quiz.template.opens_after_window:
            attempts += _precreated_attempts(site, quiz)
            continue
        if quiz.course_id == SITE_COURSE_ID:
            learners = site.learner_ids[:3]
        else:
            learners = site.learners_by_course[quiz.course_id]
        for user_id in learners:
            if (quiz.id, user_id) in forced:
                continue
            if quiz.course_id != SITE_COURSE_ID and rng.random() >= 0.5:
                continue
            attempts += _random_quiz_attempts(site, rng, quiz, user_id)
    _regrade(site, rng, first["assessment"], attempts, forced)
    return attempts


def _random_sumgrades(rng: random.Random, template: _QuizTemplate) -> Decimal:
    """Marks per question: right, wrong, or part-marked (thirds and halves, 5 decimals)."""
    if not template.sumgrades:
        return Decimal("0.00000")
    mark = template.sumgrades / template.slots
    fractions = rng.choices(_FRACTIONS, _FRACTION_WEIGHTS, k=template.slots)
    return sum(((mark * f).quantize(_MARK) for f in fractions), Decimal(0)).quantize(_MARK)


_MARK = Decimal("0.00001")
_FRACTIONS = (Decimal(1), Decimal(0), Decimal("0.5"), Decimal("0.3333333"), Decimal("0.6666667"))
_FRACTION_WEIGHTS = (68, 16, 8, 4, 4)


def _random_quiz_attempts(
    site: _Site, rng: random.Random, quiz: _Quiz, user_id: int
) -> list[_QuizAttempt]:
    t = quiz.template
    days = site.activity_days
    count = min(rng.choices((1, 2, 3), (60, 28, 12))[0], len(days))
    attempts = []
    for number, day in enumerate(sorted(rng.sample(days, count)), start=1):
        seconds = rng.randint(300, 2400)
        start = _fit_in_day(site, rng, day, seconds)
        sumgrades = _random_sumgrades(rng, t)
        roll, pending = rng.random(), rng.random() < 0.01
        if number == count and roll < 0.05 and not t.timelimit:
            attempts.append(
                _attempt_in_progress(quiz, user_id, number, start, rng.randint(60, seconds))
            )
        elif number == count and roll < 0.1 and t.timelimit:
            attempts.append(_timed_out(site, quiz, user_id, number, start))
        elif t.essay and 0.1 <= roll < 0.16:
            attempts.append(_finished(quiz, user_id, number, start, seconds, None))
        else:
            flow = "pending" if pending else ""
            attempts.append(_finished(quiz, user_id, number, start, seconds, sumgrades, flow))
    return attempts


def _finished(
    quiz: _Quiz,
    user_id: int,
    number: int,
    start: int,
    seconds: int,
    sumgrades: Decimal | None,
    flow: str = "",
    *,
    preview: int = 0,
) -> _QuizAttempt:
    """Submitted and graded at once; `sumgrades` None = a question waits for manual grading."""
    finish = start + seconds
    graded_at = finish if sumgrades is not None else None
    return _QuizAttempt(
        quiz, user_id, number, "finished", start, finish, finish, sumgrades, preview,
        currentpage=quiz.template.slots - 1, graded_at=graded_at, flow=flow, created=start,
    )  # fmt: skip


def _attempt_in_progress(
    quiz: _Quiz, user_id: int, number: int, start: int, saved_after: int
) -> _QuizAttempt:
    page = saved_after // 120 % quiz.template.slots
    return _QuizAttempt(
        quiz, user_id, number, "inprogress", start, 0, start + saved_after, None,
        currentpage=page, created=start,
    )  # fmt: skip


def _timed_out(site: _Site, quiz: _Quiz, user_id: int, number: int, start: int) -> _QuizAttempt:
    """Time limit passed unsubmitted: the cron makes it overdue, then abandoned once the grace
    period has gone too (quiz overduehandling 'graceperiod')."""
    overdue_at = start + quiz.template.timelimit
    abandon_at = overdue_at + 86400
    if abandon_at <= site.snapshot_at:
        return _QuizAttempt(
            quiz, user_id, number, "abandoned", start, 0, abandon_at, None, created=start
        )
    return _QuizAttempt(
        quiz, user_id, number, "overdue", start, 0, overdue_at, None,
        timecheckstate=abandon_at, created=start,
    )  # fmt: skip


def _precreated_attempts(site: _Site, quiz: _Quiz) -> list[_QuizAttempt]:
    """5.0's quiz_precreate_attempts task: attempts made ahead of `timeopen`, not started."""
    at = site.calendar.at(site.two_days[1], 4, 15)
    learners = [u for u in site.learners_by_course[quiz.course_id] if u != site.deleted_user_id]
    return [
        _QuizAttempt(
            quiz, u, 1, "notstarted", 0, 0, at + n, None, flow="precreated", created=at + n
        )
        for n, u in enumerate(learners)
    ]


def _named_quiz_attempts(
    site: _Site, rng: random.Random, quiz: dict[str, _Quiz]
) -> list[_QuizAttempt]:
    """The named learners' stories in the first course (see the package docstring)."""
    early, late = site.two_days
    mid = site.mid_day
    at = site.calendar.at
    u = site.named_user_ids
    a, check, reflection, final = (
        quiz["assessment"],
        quiz["check"],
        quiz["reflection"],
        quiz["final"],
    )
    attempts = [
        _finished(a, u["zoe"], 1, at(early, 10, 5), 1500, Decimal("6.125")),
        _finished(a, u["zoe"], 2, at(late, 11, 10), 1320, Decimal("8.00000")),
        _finished(check, u["zoe"], 1, at(mid, 14, 30), 900, Decimal("13.45")),
        _finished(final, u["zoe"], 1, at(mid, 16, 0), 1200, Decimal("5.32")),
        _finished(reflection, u["zoe"], 1, at(mid, 16, 40), 300, Decimal("0.00000")),
        _finished(a, u["quoted"], 1, at(mid, 10, 20), 2100, Decimal("7.996")),
        _timed_out(site, a, u["quoted"], 2, at(late, 14, 10)),
        _finished(a, u["obrien"], 1, at(early, 9, 40), 1800, Decimal("7.5")),
        _timed_out(site, a, u["obrien"], 2, at(early, 15, 0)),
        _finished(a, u["jose"], 1, at(mid, 13, 15), 2400, None),
        _manually_graded(
            _finished(check, u["jose"], 1, at(early, 10, 30), 1100, None),
            Decimal("15.5"),
            at(late, 11, 5),
        ),
        _finished(a, u["lukasz"], 1, at(early, 11, 45), 1600, Decimal("9.0")),
        _attempt_in_progress(final, u["lukasz"], 1, at(late, 13, 0), 700),
        _finished(a, u["deleted"], 1, at(early, 12, 20), 1400, Decimal("8.5")),
        _finished(check, u["deleted"], 1, at(late, 22, 40), 700, Decimal("12.0"), "pending"),
        _finished(a, u["suspended"], 1, at(mid, 9, 50), 1700, Decimal("8.25")),
        _finished(
            check, u["suspended"], 1, at(late, 23, 40), 1110, Decimal("17.0"), "graded_by_task"
        ),
        # Not a learner's: the feed leaves out the guest and the admin's previews.
        _finished(check, GUEST_USER_ID, 1, at(mid, 12, 0), 600, Decimal("10.0")),
    ]
    for n, q in enumerate((a, check, reflection, final)):
        sumgrades = _random_sumgrades(rng, q.template)
        attempts.append(
            _finished(q, ADMIN_USER_ID, 1, at(mid, 8, 30 + 5 * n), 240, sumgrades, preview=1)
        )
    return attempts


def _manually_graded(attempt: _QuizAttempt, sumgrades: Decimal, at: int) -> _QuizAttempt:
    """A teacher marks the essay later: sumgrades set, timemodified bumped, timefinish kept."""
    return dataclasses.replace(attempt, sumgrades=sumgrades, timemodified=at, graded_at=at)


def _regrade(
    site: _Site,
    rng: random.Random,
    quiz: _Quiz,
    attempts: list[_QuizAttempt],
    forced: set[tuple[int, int]],
) -> None:
    """A teacher fixes a question's answer key on the later day; the finished attempts it
    changes get one more mark and a new timemodified (timefinish stays)."""
    at = site.calendar.at(site.two_days[1], 15, 20)
    obrien = site.named_user_ids["obrien"]
    changed = 0
    for n, attempt in enumerate(attempts):
        sumgrades = attempt.sumgrades
        eligible = (
            attempt.quiz.id == quiz.id
            and attempt.state == "finished"
            and attempt.flow != "pending"
            and not attempt.preview
            and attempt.timefinish < at
        )
        if not eligible or sumgrades is None:
            continue
        lucky = rng.random() < 0.25 and (quiz.id, attempt.userid) not in forced
        if attempt.userid == obrien or lucky:
            regraded = min(sumgrades + 1, quiz.template.sumgrades).quantize(_MARK)
            attempts[n] = dataclasses.replace(
                attempt, sumgrades=regraded, timemodified=at + changed
            )
            changed += 1


def _attempt_on_release(site: _Site, attempt: _QuizAttempt) -> _QuizAttempt | None:
    """Moodle 5.0 submits first and grades in an ad-hoc task (state `submitted` until then) and
    pre-creates attempts (`notstarted`); earlier releases grade on submission."""
    modern = site.release_at_least("5.0")
    if attempt.flow == "precreated":
        return attempt if modern else None
    if attempt.flow == "pending" and modern:
        return dataclasses.replace(attempt, state="submitted", sumgrades=None, graded_at=None)
    if attempt.flow == "graded_by_task" and modern:
        graded = attempt.timefinish + 300
        return dataclasses.replace(attempt, timemodified=graded, graded_at=graded)
    return attempt


def _attempt_record(
    attempt_id: int, a: _QuizAttempt, with_notifications: bool
) -> dict[str, object]:
    layout = ",".join(f"{slot},0" for slot in range(1, a.quiz.template.slots + 1))
    return {
        "id": attempt_id,
        "quiz": a.quiz.id,
        "userid": a.userid,
        "attempt": a.attempt,
        # question_usages ids: one per attempt, in the same order, among other components' ones.
        "uniqueid": 1000 + 3 * attempt_id + attempt_id * 7 % 3,
        "layout": layout,
        "currentpage": a.currentpage,
        "preview": a.preview,
        "state": a.state,
        "timestart": a.timestart,
        "timefinish": a.timefinish,
        "timemodified": a.timemodified,
        "timemodifiedoffline": 0,
        "timecheckstate": a.timecheckstate,
        "sumgrades": a.sumgrades,
        "gradednotificationsenttime": a.graded_at if with_notifications else None,
    }


def _quiz_grades(attempts: list[_QuizAttempt]) -> Iterator[dict[str, object]]:
    """quiz_save_best_grade(): the highest rescaled grade per learner (grademethod 1)."""
    best: dict[tuple[int, int], tuple[Decimal, int, _Quiz]] = {}
    for a in attempts:
        if a.preview or a.state != "finished" or a.sumgrades is None:
            continue
        t = a.quiz.template
        grade = a.sumgrades * t.grade / t.sumgrades if t.sumgrades else Decimal(0)
        key = (a.quiz.id, a.userid)
        previous = best.get(key)
        if previous is None:
            best[key] = (grade, a.timemodified, a.quiz)
        else:
            best[key] = (max(grade, previous[0]), max(a.timemodified, previous[1]), a.quiz)
    for n, ((quiz_id, user_id), (grade, modified, _)) in enumerate(sorted(best.items()), 1):
        yield {
            "id": n,
            "quiz": quiz_id,
            "userid": user_id,
            "grade": grade.quantize(_MARK),
            "timemodified": modified,
        }
