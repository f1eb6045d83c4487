"""A synthetic Moodle site: the real tables of a chosen release, filled with seeded, realistic data.

The local default run, the tests and the benchmarks need Moodle sites that behave like real ones
where the feeds are fragile: the guest user (id 1) and the site course (id 1) that every feed must
skip, a deleted user whose identity Moodle has overwritten, a suspended user who still counts,
names that exercise CSV quoting and UTF-8, and completions just either side of local midnight.

The generator marks every schema it creates (`SCHEMA_MARKER`, its schema comment) and refuses to
drop or change an existing schema without that mark (`UnmarkedSchemaError`): a real replica that
happens to have a client's schema name is never touched.

Everything is derived from `SiteSpec` alone (no wall clock), so a seed always gives the same rows.
Each area of the site (people, courses, enrolments, completions, ...) is one fill function with its
own random stream, so adding an area later does not change the rows of the others. Rows go in with
COPY and the indexes are built afterwards, which keeps a million completions well under a minute.

Scenarios
---------
SCORM, quiz and face-to-face activity falls on the activity days too. The first course (id 2)
holds scripted stories for the named learners, user ids 3-9 in this order: zoe, jose, lukasz,
obrien, quoted, deleted (deleted=1), suspended (suspended=1). Every other enrolled learner gets
seeded random activity. Below, "early" and "late" are the first and last activity day (with a
one-day window: the day before it, and the day itself), "mid" is the middle one. Times are
local wall-clock times of the site's time zone.

SCORM. Packages: scorm 1 (SCORM_1.2, "<course> e-learning": 3 SCOs, the last one scored, plus
1 asset) and scorm 2 (SCORM_1.3, "<course> interactive scenarios": 4 SCOs plus 2 assets), both
in the first course. Every other course has one package. The last package is on the site course.
Each package has an organization row in `scorm_scoes` (scormtype '', launch ''), then its `sco`
and `asset` items in sortorder.
- zoe, scorm 1: attempt 1 early, knowledge check 'failed' with score 55; attempt 2 late, 'passed' 90.
- lukasz, scorm 1: attempt 1 early, SCO 2 'incomplete'. It is revisited late and becomes
  'completed': x.start.time stays on the early day, the other rows of that SCO attempt move to
  the late day.
- quoted, scorm 1: 'browsed' and 'not attempted', no score rows.
- suspended, scorm 1: 'passed' 100, and opens the Glossary asset.
- deleted, scorm 2: completed + passed, cmi.score.raw 85, cmi.score.scaled 0.85.
- obrien, scorm 2: attempt 1 incomplete/unknown; attempt 2 late ends completed + failed, score 40.5.
- jose, scorm 2: completion 'not attempted' and 'unknown', success 'unknown', no score.
- An opened asset leaves x.start.time and a 'completed' status row on the asset's scoe, as
  loadSCO.php writes it (suspended, obrien, jose, and about a quarter of random attempts).
- The guest (user 1) has one SCO attempt in scorm 1. Learner 3 has one in the site-course package.
- Random: about 60% of a course's learners per package, 1-3 attempts on different days, and
  every status. A few final attempts are revisited on a later day.
- Release <= 4.2 stores the rows in `scorm_scoes_track`. >= 4.3 stores the same rows in
  `scorm_attempt` + `scorm_scoes_value` + `scorm_element`, as the 4.3 upgrade would migrate them.
  Element ids are per site: a seeded handful of elements used before the window take the first
  ids, then the rest follow in order of first use.

Quiz. First course: quiz 1 "assessment" (sumgrades 10 -> grade 100, 1 decimal point, pass mark 80,
1 h time limit then a 1-day grace period, has an essay); quiz 2 "knowledge check" (20 -> 10,
2 dp, no pass mark); quiz 3 "reflection (not marked)" (sumgrades 0); quiz 4 "final test" (8 -> 100,
0 dp, pass 50); quiz 5 "refresher" (opens 3 days after the window, precreateattempts on 5.0+).
Every other course has one quiz. The last quiz is on the site course. Pass marks are in
`grade_items` (itemmodule 'quiz', itemnumber 0).
- zoe: quiz 1 6.125 early (61.25 -> "61.3", failed) and 8.0 late (80.0, passed). Quiz 2 13.45
  (6.725 -> "6.73"). Quiz 4 5.32 (66.5 -> "67"). Quiz 3 0 (no marks).
- quoted: quiz 1 7.996 (79.96: shows "80.0", but failed against the unrounded grade). Attempt 2 is
  'overdue' (started late).
- obrien: quiz 1 attempt 1 finished early with 7.5, regraded to 8.5 on the late day at 15:20
  (timemodified late, timefinish early). Attempt 2 is 'abandoned'. The same regrade adds one mark
  to about a quarter of the other finished quiz-1 attempts from before it.
- jose: quiz 1 finished with sumgrades NULL (needs grading). Quiz 2 finished early with NULL and
  graded by hand on the late day (15.5).
- lukasz: quiz 1 9.0; quiz 4 'inprogress'.
- deleted: quiz 1 8.5. Quiz 2 submitted late at 22:51: on 5.0+ it is 'submitted' with NULL
  sumgrades; before 5.0 it is 'finished' with 12.0.
- suspended: quiz 1 8.25. Quiz 2 submitted late at 23:58:30. On 5.0+ the grading task finishes it
  5 minutes later, so timemodified is on the next day. Before 5.0, timemodified = timefinish.
- admin (user 2): one preview (preview=1, finished) of each of quizzes 1-4. The guest has a
  finished attempt on quiz 2.
- 5.0+ only: quiz 5 has one 'notstarted' attempt per enrolled learner (not the deleted one).
- Random: about half of a course's learners per quiz, 1-3 attempts. Mostly finished; the rest
  inprogress (untimed quizzes), overdue or abandoned (timed ones), or needing grading (quiz with
  an essay). On 5.0+, about 1% are still 'submitted'.
- `quiz_grades` holds each learner's best rescaled grade.

Face-to-face. One activity per course, name = class title. Every third activity (the first
included) needs approval. Sessions per activity: 'single' (mid, 09:30-16:30); 'two-day' (early
and the day after, 09:00-12:00 each, two `facetoface_sessions_dates` rows); 'future' (a week
after the window); 'no-dates' (datetimeknown 0, no date rows). There is one extra session per 40
learners of the course. Status rows use codes 10-100, never 20. Every row of a signup is
superceded=1 except the newest. Approving writes 50 then 70 in the same second (70 has the
higher id).
- zoe: 'future' session. Requested, then approved and booked, all on the first activity day.
- jose: 'single': requested, then declined (30).
- lukasz: 'future': requested, approved, booked, then cancelled (10) on the late day.
- obrien: 'no-dates': waitlisted (60).
- quoted: 'two-day': requested, approved, booked, cancelled, then requested, approved and booked
  again (the same signup row), then partially attended (90, grade 50).
- deleted: 'single': booked, then no show (80, grade 0). suspended: 'single': booked, then fully
  attended (100, grade 100). Attendance is taken by the admin after the last session date.
- Random: about 30% of a course's learners sign up (some in the week before the window).

Also: `modules` (core modules in install order, then facetoface). A `course_modules` row and a
module context (level 70) for every activity. `grade_items`: course totals plus the quiz, SCORM
and face-to-face items.
"""

from __future__ import annotations

from synthetic_moodle.f2f import (
    F2F_APPROVED,
    F2F_BOOKED,
    F2F_DECLINED,
    F2F_FULLY_ATTENDED,
    F2F_NO_SHOW,
    F2F_PARTIALLY_ATTENDED,
    F2F_REQUESTED,
    F2F_USER_CANCELLED,
    F2F_WAITLISTED,
)
from synthetic_moodle.generate import (
    SCHEMA_MARKER,
    UnmarkedSchemaError,
    check_replaceable,
    generate_site,
)
from synthetic_moodle.rows import insert_rows
from synthetic_moodle.spec import (
    ADMIN_USER_ID,
    GUEST_USER_ID,
    MIN_LEARNERS,
    SITE_COURSE_ID,
    STUDENT_ROLE_ID,
    SiteSpec,
    SiteSummary,
)

__all__ = [
    "ADMIN_USER_ID",
    "F2F_APPROVED",
    "F2F_BOOKED",
    "F2F_DECLINED",
    "F2F_FULLY_ATTENDED",
    "F2F_NO_SHOW",
    "F2F_PARTIALLY_ATTENDED",
    "F2F_REQUESTED",
    "F2F_USER_CANCELLED",
    "F2F_WAITLISTED",
    "GUEST_USER_ID",
    "MIN_LEARNERS",
    "SCHEMA_MARKER",
    "SITE_COURSE_ID",
    "STUDENT_ROLE_ID",
    "SiteSpec",
    "SiteSummary",
    "UnmarkedSchemaError",
    "check_replaceable",
    "generate_site",
    "insert_rows",
]
