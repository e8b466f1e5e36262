"""Output directories that never lose a user's work: the one owner of how sail-rl writes.

Every command that writes into a folder goes through `claim_output_dir`:

    out/.sail-rl-run.json   who wrote the folder: the command and its resolved recipe
    out/.sail-rl.lock       held (flock) while a process writes there; a second writer is refused

A folder is used as is only when it is empty or was written by the same command for the
same job; anything else (another run, a trained model, files sail-rl did not write, the
job's own input) is refused with one line naming `--overwrite` (start over, the folder is
emptied first) or `--resume` (continue; a recipe that changes what the run computes is
refused with the differing keys unless `--allow-recipe-change`).

Files are written atomically (`atomic_write_text`: a temporary beside the target, then
`os.replace`) and world-readable as the umask allows: safetensors' own writer leaves 0600
files (it writes a temporary and renames it), so `make_readable` resets written model folders.
"""

from __future__ import annotations

import argparse
import atexit
import errno
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Optional

from sail_rl.errors import ConfigError, SailRLError

MARKER = ".sail-rl-run.json"
LOCK = ".sail-rl.lock"
_OWN_FILES = {MARKER, LOCK}
_HELD_LOCKS: dict[str, Any] = {}  # resolved dir -> open lock file, kept for the process's life


class DiskSpaceError(SailRLError):
    """Not enough free space for what a command is about to write."""

    exit_code = 2


# ---------------------------------------------------------------- file modes and atomic writes


def default_file_mode() -> int:
    """0666 minus the umask: what `open(path, "w")` gives (0644 under the usual umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def make_readable(root: str | Path) -> None:
    """Give every file under `root` the umask's default mode (safetensors writes 0600)."""
    mode = default_file_mode()
    root = Path(root)
    for path in [root] if root.is_file() else root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, mode)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` so a reader sees the old file or the whole new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _os_error(exc, path) from None
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _os_error(exc: OSError, path: Path) -> SailRLError:
    if exc.errno == errno.ENOSPC:
        return DiskSpaceError(f"no space left on the device while writing {path}; free space or write elsewhere")
    return ConfigError(f"cannot write {path}: {exc.strerror}; choose a writable path")


# ---------------------------------------------------------------- free space


def free_bytes(path: str | Path) -> int:
    """Free bytes on the file system that holds `path` (or its nearest existing parent)."""
    probe = Path(path).resolve()
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def write_or_clean(tmp: Path, write, out_dir: Path, older: str) -> None:
    """Run `write()` into the temporary `tmp`; on any failure remove `tmp` (a full disk must not
    stay full). A full disk is one line; `older` says where older checkpoints are limited."""
    try:
        write()
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise DiskSpaceError(f"no space left on the device while saving to {out_dir}; free space "
                                 f"({older}) and resume with --resume") from None
        raise


def check_free_space(path: str | Path, needed_bytes: int, what: str) -> None:
    """Refuse before writing `needed_bytes` (with 10% headroom) when the disk has less."""
    free = free_bytes(path)
    if needed_bytes * 1.1 > free:
        raise DiskSpaceError(f"{what} needs about {needed_bytes / 2**30:.2f} GiB but {path} has "
                             f"{free / 2**30:.2f} GiB free; free space or write elsewhere")


def tree_bytes(root: str | Path) -> int:
    root = Path(root)
    if root.is_file():
        return root.stat().st_size
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


# ---------------------------------------------------------------- inputs


def check_model_folder(path: str | Path, key: str) -> None:
    """`path` holds a whole checkpoint: config.json and weights (one line naming `key` otherwise)."""
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{key} {path} has no model (no config.json); fix the path, or create one with "
                          f"`sail-rl init-model --preset tiny --out {path}`")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise ConfigError(f"{key} {path} has a config.json but no weights (*.safetensors); copy the weights "
                          "there or point at a complete checkpoint")


# ---------------------------------------------------------------- recipes


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values.

    >>> flatten({"train": {"lr": 1e-3, "lora": {"r": 8}}, "data": [1]})
    {'train.lr': 0.001, 'train.lora.r': 8, 'data': [1]}
    """
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        out.update(flatten(value, name) if isinstance(value, dict) else {name: value})
    return out


def as_json(data: Any) -> Any:
    """`data` as it reads back from JSON (tuples -> lists, keys -> strings), so comparisons are fair."""
    return json.loads(json.dumps(data, default=str))


def recipe_diff(old: dict, new: dict, ignore: Iterable[str] = ()) -> list[str]:
    """Dotted keys whose values differ; a key under an `ignore` prefix does not count.

    >>> recipe_diff({"train": {"lr": 1e-3, "logging_steps": 5}}, {"train": {"lr": 1e-5, "logging_steps": 9}},
    ...             ignore=["train.logging_steps"])
    ['train.lr']
    """
    a, b = flatten(old), flatten(new)
    prefixes = tuple(ignore)
    keys = sorted(set(a) | set(b))
    return [k for k in keys if a.get(k) != b.get(k) and not any(k == p or k.startswith(p + ".") for p in prefixes)]


def describe_diff(old: dict, new: dict, keys: list[str], limit: int = 4) -> str:
    a, b = flatten(old), flatten(new)
    shown = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def read_marker(out_dir: str | Path) -> Optional[dict]:
    path = Path(out_dir) / MARKER
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return marker if isinstance(marker, dict) else None


def write_marker(out_dir: str | Path, command: str, recipe: dict) -> None:
    atomic_write_text(Path(out_dir) / MARKER, json.dumps({"command": command, "recipe": recipe}, indent=1, default=str) + "\n")


# ---------------------------------------------------------------- lock


def lock_dir(out_dir: str | Path) -> None:
    """Hold `out_dir/.sail-rl.lock` for the rest of this process; refuse if another process holds it."""
    out = Path(out_dir).resolve()
    if str(out) in _HELD_LOCKS:
        return
    out.mkdir(parents=True, exist_ok=True)
    f = open(out / LOCK, "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise ConfigError(f"{out_dir} is being written by another sail-rl process (pid {holder}); "
                          "wait for it to finish or choose another output folder") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    if not _HELD_LOCKS:
        atexit.register(_release_all)
    _HELD_LOCKS[str(out)] = f


def _release_all() -> None:
    for key in list(_HELD_LOCKS):
        unlock_dir(key)


def unlock_dir(out_dir: str | Path) -> None:
    f = _HELD_LOCKS.pop(str(Path(out_dir).resolve()), None)
    if f is not None:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        f.close()


# ---------------------------------------------------------------- claiming a folder


def add_output_flags(parser: argparse.ArgumentParser, where: str) -> None:
    """--resume / --allow-recipe-change / --overwrite, shared by `sft` and `run`."""
    parser.add_argument("--resume", action="store_true", help=f"continue the run in {where} (same recipe)")
    parser.add_argument("--allow-recipe-change", action="store_true",
                        help="with --resume: continue even though the recipe changes what the run computes")
    parser.add_argument("--overwrite", action="store_true", help=f"start over: empty {where} first")


def check_output_flags(args: argparse.Namespace) -> None:
    if args.overwrite and args.resume:
        raise ConfigError("--overwrite starts over and --resume continues; pass one of them")
    if args.allow_recipe_change and not args.resume:
        raise ConfigError("--allow-recipe-change only applies to --resume; add --resume or drop it")


def _contents(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name not in _OWN_FILES) if out.is_dir() else []


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def check_not_input(out: str | Path, inputs: Iterable[str | Path], flag: str) -> None:
    """Refuse an output that is, contains or lies inside one of the job's inputs."""
    out_path = Path(out).resolve()
    for item in inputs:
        if not item:
            continue
        src = Path(item).resolve()
        if _is_within(out_path, src) or _is_within(src, out_path):
            raise ConfigError(f"{flag} {out} is the job's own input {item}; write to another path")


def _empty_for_overwrite(out: Path, flag: str) -> None:
    """Remove the folder's contents (not the folder: the lock lives there)."""
    resolved = out.resolve()
    cwd = Path.cwd().resolve()
    if resolved == Path(resolved.anchor) or resolved == Path.home().resolve() or _is_within(cwd, resolved):
        raise ConfigError(f"--overwrite would empty {out}, which holds the working directory or home; "
                          f"give {flag} a dedicated folder")
    for path in out.iterdir():
        if path.name == LOCK:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def claim_output_dir(out_dir: str | Path, command: str, recipe: dict, *, flag: str, overwrite: bool = False,
                     resume: bool = False, allow_recipe_change: bool = False, ignore_keys: Iterable[str] = (),
                     same_job_reuse: bool = False, inputs: Iterable[str | Path] = ()) -> Path:
    """Make `out_dir` this job's: lock it, check what it holds, record the resolved `recipe`.

    - empty or new: taken.
    - `overwrite`: emptied, then taken.
    - written by `command` before: with `resume`, the recorded recipe must equal `recipe` (keys
      under `ignore_keys` aside) unless `allow_recipe_change`; without it, refused, unless
      `same_job_reuse` and the recipes are equal (a rerun of the same eval replaces its results).
    - anything else: refused.
    `flag` names the setting that chose the folder, for the error lines.
    """
    out = Path(out_dir)
    recipe = as_json(recipe)  # compared with the recorded one as read back from JSON
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{flag} {out} is a file, not a folder; give a folder path")
    check_not_input(out, inputs, flag)
    try:
        lock_dir(out)
    except OSError as exc:
        raise _os_error(exc, out) from None
    marker, contents = read_marker(out), _contents(out)
    if overwrite and contents:
        _empty_for_overwrite(out, flag)
    elif resume:
        _check_resume(out, command, recipe, marker, contents, flag, allow_recipe_change, ignore_keys)
    elif contents:
        _refuse_reuse(out, command, recipe, marker, contents, flag, same_job_reuse, ignore_keys)
    write_marker(out, command, recipe)
    return out


def _check_resume(out: Path, command: str, recipe: dict, marker: Optional[dict], contents: list[str], flag: str,
                  allow_recipe_change: bool, ignore_keys: Iterable[str]) -> None:
    if not contents:
        return
    if marker is None or marker.get("command") != command:
        what = f"a 'sail-rl {marker['command']}' output" if marker else "files sail-rl did not record as this run's"
        if marker is None and allow_recipe_change:
            return  # a run from before run directories recorded their recipe: the user vouches for it
        raise ConfigError(f"--resume: {out} holds {what}; resume from a 'sail-rl {command}' run directory"
                          + (", or pass --allow-recipe-change to resume it with this recipe" if marker is None else ""))
    changed = recipe_diff(marker.get("recipe", {}), recipe, ignore_keys)
    if changed and not allow_recipe_change:
        raise ConfigError(f"--resume with a recipe that changes the run in {out}: {describe_diff(marker['recipe'], recipe, changed)}; "
                          "resume with the recorded recipe, add --allow-recipe-change, or start a new run")


def _refuse_reuse(out: Path, command: str, recipe: dict, marker: Optional[dict], contents: list[str], flag: str,
                  same_job_reuse: bool, ignore_keys: Iterable[str]) -> None:
    if marker is not None and marker.get("command") == command:
        if same_job_reuse and not recipe_diff(marker.get("recipe", {}), recipe, ignore_keys):
            return
        hint = "--resume to continue it, " if not same_job_reuse else ""
        raise ConfigError(f"{flag} {out} already holds a 'sail-rl {command}' output of another job; pass {hint}"
                          f"--overwrite to replace it, or choose another folder")
    shown = ", ".join(contents[:3]) + (" ..." if len(contents) > 3 else "")
    owner = f"a 'sail-rl {marker['command']}' output" if marker else f"files ({shown})"
    raise ConfigError(f"{flag} {out} already holds {owner}; pass --overwrite to replace them, or choose another folder")
