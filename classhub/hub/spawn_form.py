"""The start page's form, in French: the courses a person may start, each with its description
and the GPU it comes with; the courses they teach, with their formgrader and their grades; a
grader account's own form. Plain functions of the course profiles: tested without a hub.
"""

from __future__ import annotations

from html import escape

from classhub.config.model import CourseProfile

GPU_OFFER = {
    "none": "sans GPU (calcul sur CPU)",
    "exclusive": "un GPU entier pour vous",
    "shared": "une part d'un GPU partagé ({n} étudiants par GPU)",
    "mig": "une tranche MIG d'un GPU",
}
NOT_ENROLLED = ('<p class="alert alert-warning">Vous n\'êtes inscrit(e) à aucun cours. '
                "Demandez à votre enseignant de vous inscrire.</p>")


def options_from_form(formdata: dict[str, list[str]]) -> dict[str, str]:
    """The form's answer as the spawn's options: the chosen course, or nothing (a grader
    account's form has no choice; the spawner then decides or refuses)."""
    course = formdata.get("course", [""])[0]
    return {"course": course} if course else {}


def gpu_offer(profile: CourseProfile) -> str:
    return GPU_OFFER[profile.gpu_policy].format(n=profile.students_per_gpu)


def course_choice(mine: list[str], profiles: dict[str, CourseProfile]) -> str:
    if not mine:
        return NOT_ENROLLED
    options = []
    for index, course_id in enumerate(mine):
        profile = profiles[course_id]
        checked = " checked" if index == 0 else ""
        options.append(
            f'<div class="form-check">'
            f'<input class="form-check-input" type="radio" name="course" id="course-{course_id}"'
            f' value="{course_id}"{checked}>'
            f'<label class="form-check-label" for="course-{course_id}">'
            f"<strong>{escape(profile.title)}</strong><br>"
            f"<small>{escape(profile.description)}</small><br>"
            f"<small>GPU : {escape(gpu_offer(profile))}</small></label></div>"
        )
    return "<fieldset><legend>Choisissez votre cours</legend>" + "".join(options) + "</fieldset>"


def teaching(taught: list[str], profiles: dict[str, CourseProfile], root: str,
             grader_account: str, grader_service: str) -> str:
    """Links for an instructor: each taught course's formgrader and grade export."""
    if not taught:
        return ""
    items = "".join(
        f"<li><strong>{escape(profiles[c].title)}</strong> : "
        f'<a href="{root}hub/spawn/{grader_account.format(course=c)}" target="_blank">'
        f"ouvrir le correcteur (formgrader, dans un nouvel onglet)</a> · "
        f'<a href="{root}services/{grader_service}/notes/{c}/">télécharger les notes</a></li>'
        for c in taught)
    return ('<section class="mt-4" aria-labelledby="classhub-teaching">'
            '<h2 id="classhub-teaching" class="h5">Les cours que vous enseignez</h2>'
            f"<ul>{items}</ul></section>")


def grader_form(profile: CourseProfile) -> str:
    return (f"<p>Le correcteur du cours « {escape(profile.title)} » : le formgrader de nbgrader "
            "(devoirs, soumissions, notation à la main, retours aux étudiants), dans un "
            "conteneur de l'image du cours, sans GPU. Il ne lance jamais le code des "
            "étudiants : la correction automatique passe par le service de correction, "
            "isolé.</p>")
