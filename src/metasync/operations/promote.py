"""`metasync promote`: pin an environment to the commit another one runs, on a branch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from metasync.errors import ConfigError, Location, ServerError
from metasync.manifests.environment import load_environment
from metasync.manifests.gitref import (
    commit_file_on_branch,
    open_repo,
    push_branch,
    resolve_commit,
    set_pin,
)
from metasync.manifests.loader import MANIFESTS_DIR
from metasync.model.fingerprint import canonical_json
from metasync.operations.plan import plan as make_plan
from metasync.project import Project
from metasync.render.values import paths_summary, summary_line


def promote(project: Project, source: str, target: str, *, branch: str | None = None,
            push: str | None = None, skip_stage: bool = False,
            unverified: bool = False) -> Promotion:  # fmt: skip
    """Pin ``target`` to the commit ``source`` runs, on a new branch; the checkout is untouched.
    Only from the stage before it (``target``'s promotion.from), unless ``skip_stage``; only a
    commit ``source``'s server runs (applied, and landed), unless ``unverified``."""
    repo = open_repo(project.root)
    origin = load_environment(project.root, source, connect=False)
    destination = load_environment(project.root, target, connect=False)
    skipped = _skipped(project, source, target, skip_stage)
    if origin.config.promotion.ref:
        where = Location(origin.file, None, "promotion.ref")
        commit = resolve_commit(repo, origin.config.promotion.ref, where)
    else:
        if repo.is_dirty(untracked_files=True, path=str(project.root / MANIFESTS_DIR)):
            raise ConfigError(
                f"{source} follows the working tree and manifests/ has uncommitted changes, so "
                f"no commit holds what {source} runs",
                location=Location(f"{MANIFESTS_DIR}/"),
                hint="Commit (or stash) the changes under manifests/, then promote.",
            )
        commit = repo.head.commit
    short = commit.hexsha[:7]
    if not unverified:
        _runs(project, source, commit.hexsha if origin.config.promotion.ref else None, short)
    summary = _promotion_summary(project, target, commit.hexsha)
    base = repo.head.commit
    repo_root = Path(repo.working_tree_dir or project.root).resolve()
    env_path = (project.root / destination.file).relative_to(repo_root).as_posix()
    try:
        current = (base.tree / env_path).data_stream.read().decode()
    except KeyError:
        raise ConfigError(
            f"{destination.file} is not committed", location=Location(destination.file),
            hint="Commit the environment first.",
        ) from None  # fmt: skip
    name = branch or f"promote/{target}-{short}"
    message = f"Promote {source} to {target}: {target} runs {short}\n\n" + "\n".join(summary)
    trailers = []
    if skipped is not None:
        trailers.append(f"Skip-stage: {', '.join(skipped) or f'{target} has no stage {source}'}")
    if unverified:
        trailers.append(f"Unverified: whether {source} runs {short} was not checked")
    if trailers:
        message += "\n\n" + "\n".join(trailers)
    new = commit_file_on_branch(repo, base, env_path, set_pin(current, commit.hexsha),
                                branch=name, message=message)  # fmt: skip
    if push:
        push_branch(repo, push, name)
    return Promotion(source, target, name, new.hexsha, commit.hexsha, tuple(summary), skipped,
                     unverified)  # fmt: skip


def _runs(project: Project, source: str, pin: str | None, short: str) -> None:
    """Refuse unless ``source``'s server runs what ``source`` renders at ``pin`` (its working tree
    when None): what is promoted has been applied there, and landed."""
    later = (
        f"Apply it to {source} first (`metasync apply --env {source}`) and see it land, or pass "
        "--unverified to promote all the same (the promotion commit records it)."
    )
    try:
        plan = make_plan(project, source, pin=pin).plan
    except ServerError as exc:
        raise ConfigError(
            f"cannot tell whether {source} runs {short}: {exc.problem.message}",
            hint=f"Promote once {source}'s server can be read, or pass --unverified to promote "
            "all the same (the promotion commit records it).",
        ) from None  # fmt: skip
    if plan.pending:
        titles = [c.title for c in plan.pending]
        listed = ", ".join(titles[:5]) + (f" and {len(titles) - 5} more" if len(titles) > 5 else "")
        raise ConfigError(
            f"{source} does not run {short}: its server ({plan.server}) differs from it in "
            f"{len(titles)} object(s): {listed}", hint=later,
        )  # fmt: skip


def _skipped(
    project: Project, source: str, target: str, skip_stage: bool
) -> tuple[str, ...] | None:
    """None when ``source`` is ``target``'s stage (its promotion.from); else the stages between
    them (none when ``source`` is not upstream at all), which only ``skip_stage`` lets through."""
    stage = load_environment(project.root, target, connect=False)
    if stage.config.promotion.from_ == source:
        return None
    between: list[str] = []
    upstream = stage.config.promotion.from_
    while upstream and upstream != source and upstream not in between and upstream != target:
        between.append(upstream)
        upstream = load_environment(project.root, upstream, connect=False).config.promotion.from_
    path = list(reversed(between)) if upstream == source else []
    if skip_stage:
        return tuple(path)
    where = Location(stage.file, None, "promotion.from")
    if path:
        order = " -> ".join([source, *path, target])
        raise ConfigError(
            f"{target} is promoted from {stage.config.promotion.from_}, not {source}: promoting "
            f"{source} to {target} skips {', '.join(path)}", location=where,
            hint=f"Promote in order ({order}), or pass --skip-stage to skip on purpose (the "
            "promotion commit records it).",
        )  # fmt: skip
    raise ConfigError(
        f"{target} is not promoted from {source} (its promotion.from is "
        f"{stage.config.promotion.from_ or 'not set'})", location=where,
        hint=f"Promote {target} from its own stage, or pass --skip-stage to promote from {source} "
        "on purpose (the promotion commit records it).",
    )  # fmt: skip


def _promotion_summary(project: Project, target: str, commit: str) -> list[str]:
    """What changes in ``target``: its plan against the live server, or a manifest diff."""
    try:
        plan = make_plan(project, target, pin=commit).plan
    except ServerError as exc:
        lines = [f"{target}'s server could not be read ({exc.problem.message}); manifest changes:"]
        before = {r.key: r for r in project.render(target).resources}
        after = {r.key: r for r in project.render(target, pin=commit).resources}
        for key in sorted(set(before) | set(after), key=lambda k: (k[0], k[1], k[2] or 0)):
            title = (after.get(key) or before[key]).title
            if key not in before:
                lines.append(f"  + {title}")
            elif key not in after:
                lines.append(f"  - {title}")
            elif canonical_json(before[key].spec) != canonical_json(after[key].spec):
                lines.append(f"  ~ {title}")
        return lines if len(lines) > 1 else [*lines, "  (none)"]
    counts = plan.summary()
    lines = [f"Plan for {target} ({plan.server}): {summary_line(counts)}."]
    for change in plan.pending:
        mark = {"create": "+", "update": "~", "delete": "-"}[change.action]
        detail = f": {paths_summary(change.fields)}" if change.action == "update" else ""
        lines.append(f"  {mark} {change.title}{detail}")
    return lines


@dataclass(frozen=True)
class Promotion:
    source: str
    target: str
    branch: str
    commit: str  # the new commit on ``branch``
    pinned: str  # the commit ``target`` now runs
    summary: tuple[str, ...]
    #: --skip-stage: the stages skipped (empty: ``source`` is not upstream of ``target``)
    skipped: tuple[str, ...] | None = None
    #: --unverified: whether ``source`` runs the commit was not checked
    unverified: bool = False
