"""``gipo-robot`` commands on episode stores and datasets: info, validate, convert, collect-demos."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from gipo_robot.cli.common import JsonFlag, app, check_writable, emit, error_exit, stdout_to_stderr


@app.command()
def info(
    store: Annotated[
        Path, typer.Argument(help="An episode store (.zarr folder) or a Diffusion Policy replay buffer.")
    ],
    thumbnail: Annotated[
        Path | None, typer.Option(help="Write a PNG of the first frame of the first episodes per camera.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Summarise an episode store: episodes, steps, success rate, sources, features, size on disk."""
    from gipo_robot.datasets import DatasetError, open_dataset
    from gipo_robot.datasets.validate import lost_chunks

    try:
        opened = open_dataset(store)
        lost = lost_chunks(opened) or []
        if lost:
            files = ", ".join(p.chunk for p in lost[:3]) + (", ..." if len(lost) > 3 else "")
            raise DatasetError(
                f"{len(lost)} chunk file(s) are lost ({files}): a summary would count their values as "
                f"zeros/False; `gipo-robot validate {store}` lists them",
                path=store,
            )
        result = opened.info()
        if thumbnail is not None:
            from gipo_robot.datasets.thumbnail import write_thumbnail

            result["thumbnail"] = write_thumbnail(opened, thumbnail)
    except DatasetError as err:
        raise error_exit(err, as_json) from err
    rate = "n/a" if result["success_rate"] is None else f"{result['success_rate']:.0%}"
    lines = [
        f"{result['path']}: {result['episodes']} episodes, {result['steps']} steps at {result['fps']:g} Hz, "
        f"{result['size_bytes'] / 1e6:.1f} MB",
        f"success rate {rate}; sources " + ", ".join(f"{k} {v}" for k, v in result["sources"].items()),
    ]
    for name, spec in result["features"].items():
        lines.append(f"  {name:28s} {spec['kind']:8s} {spec['dtype']:8s} {tuple(spec['shape'])}")
    if result.get("thumbnail"):
        lines.append(f"thumbnail: {result['thumbnail']}")
    emit(result, as_json, "\n".join(lines))


@app.command("validate")
def validate_command(
    store: Annotated[
        Path, typer.Argument(help="An episode store (.zarr folder) or a Diffusion Policy replay buffer.")
    ],
    deep: Annotated[
        bool,
        typer.Option("--deep", help="Also decode every chunk (truncated/corrupt files, NaN); reads it all."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Check a store: layout, metadata, lost chunk files; --deep also decodes every chunk. Exits 1 on a
    problem (each names the feature, episode and chunk file)."""
    from gipo_robot.datasets.validate import report

    result = report(store, deep=deep)
    checked = "" if result["chunk_files_checked"] else " (missing chunk files not checked: see validate.py)"
    if result["ok"]:
        human = f"{store}: ok, {result['episodes']} episodes, {result['steps']} steps" + checked
    else:
        human = f"{store}: {len(result['problems'])} problem(s){checked}\n" + "\n".join(
            f"  {p['message']}" for p in result["problems"]
        )
    if not result["ok"]:
        result["error"] = f"{len(result['problems'])} problem(s): {result['problems'][0]['message']}"
    emit(result, as_json, human)
    if not result["ok"]:
        raise typer.Exit(code=1)


@app.command()
def convert(
    src: Annotated[
        Path,
        typer.Argument(
            help="robomimic .hdf5 file, episode store (.zarr), Diffusion Policy / UMI replay_buffer.zarr, "
            "or LeRobot dataset folder (meta/info.json)."
        ),
    ],
    dst: Annotated[Path, typer.Argument(help="Episode store to create, or .hdf5 file to write.")],
    overwrite: Annotated[bool, typer.Option(help="Replace DST if it exists.")] = False,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Export an episode store as 'lerobot' (a LeRobot v3.0 dataset folder)."),
    ] = None,
    video: Annotated[
        bool, typer.Option(help="With --to lerobot: cameras as mp4 (lossy, small), not PNG (lossless).")
    ] = False,
    robot: Annotated[
        str | None,
        typer.Option(
            help='A LeRobot dataset\'s robot config (units = "lerobot"; not connected): check the motors, '
            "store the actions normalised by its spec and record it as the store's robot."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Convert robomimic HDF5, a Diffusion Policy replay buffer or a LeRobot dataset to the Zarr episode
    store, or a store to robomimic HDF5 (or to LeRobot with --to lerobot); the direction comes from the
    suffixes and the source's layout."""
    from gipo_robot.datasets import DatasetError, detect_format, import_dataset, open_dataset
    from gipo_robot.datasets.from_lerobot import store_to_lerobot
    from gipo_robot.datasets.from_robomimic import store_to_robomimic
    from gipo_robot.datasets.importers import EPISODE_STORE, reads_in_place

    hdf5 = (".hdf5", ".h5")
    start = time.perf_counter()
    try:
        if to not in (None, "lerobot"):
            raise DatasetError(f"--to {to!r} is not a known target; known: lerobot", path=dst)
        fmt = detect_format(src)
        export = to == "lerobot" or (dst.suffix in hdf5 and reads_in_place(fmt))
        options = {} if robot is None else {"robot_spec": _robot_spec(robot, fmt, src)}
        if fmt != EPISODE_STORE and not export:
            store = import_dataset(src, dst, fmt=fmt, overwrite=overwrite, **options)
            direction = f"{fmt}->zarr"
        elif to == "lerobot":
            store = open_dataset(src)
            store_to_lerobot(store, dst, video=video, overwrite=overwrite)
            direction = "zarr->lerobot"
        elif dst.suffix in hdf5:
            store = open_dataset(src)
            store_to_robomimic(store, dst, overwrite=overwrite)
            direction = "zarr->robomimic"
        else:
            raise DatasetError(
                "cannot tell the direction: the source is already an episode store, so DST must be a "
                "robomimic .hdf5/.h5 file, or pass --to lerobot",
                path=src,
            )
    except DatasetError as err:
        raise error_exit(err, as_json) from err
    size = (
        sum(p.stat().st_size for p in dst.rglob("*") if p.is_file()) if dst.is_dir() else dst.stat().st_size
    )
    result = {
        "src": str(src),
        "dst": str(dst),
        "direction": direction,
        "episodes": store.n_episodes,
        "steps": store.n_steps,
        "size_bytes": size,
        "seconds": time.perf_counter() - start,
    }
    human = (
        f"{direction}: {result['episodes']} episodes, {result['steps']} steps -> {dst} ({size / 1e6:.1f} MB)"
    )
    emit(result, as_json, human)


def _robot_spec(robot: str, fmt: str, src: Path):
    """The spec of ``convert --robot``'s robot, built from its config without connecting."""
    from gipo_robot.datasets import DatasetError
    from gipo_robot.hardware.config import RobotConfigError, load_robot

    if fmt != "lerobot":
        raise DatasetError(f"--robot applies to a LeRobot dataset; this is {fmt}", path=src)
    try:
        return load_robot(robot).spec
    except (RobotConfigError, ValueError) as err:
        raise DatasetError(f"--robot: {err}", path=src) from err


@app.command("collect-demos")
def collect_demos_command(
    task: Annotated[str, typer.Option(help="Lift, Can or Stack.")] = "Lift",
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to record.")] = 50,
    noise: Annotated[float, typer.Option(min=0.0, max=1.0, help="Expert suboptimality in [0, 1].")] = 0.0,
    out: Annotated[Path, typer.Option(help="Zarr episode store to create.")] = Path("demos.zarr"),
    seed: Annotated[int, typer.Option(help="Seed of the first episode; episode i uses seed + i.")] = 0,
    camera: Annotated[
        list[str] | None, typer.Option(help="Also record this camera's images (repeatable), e.g. agentview.")
    ] = None,
    image_size: Annotated[int, typer.Option(min=8, help="Camera image side, pixels.")] = 84,
    render_quality: Annotated[
        str,
        typer.Option(
            help="Camera rendering: fast (what training, evaluation and fine-tuning render) or exact "
            "(robosuite's own settings)."
        ),
    ] = "fast",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing store at --out.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Record scripted-expert demonstrations of a robosuite task into a Zarr episode store.

    Cameras (--camera) render with the fast settings by default, as every camera path of the toolkit
    does, so a policy trained on these frames sees the same pixels in evaluation and fine-tuning.
    """
    import numpy as np
    from tqdm import tqdm

    from gipo_robot.sim.config import RENDER_QUALITIES
    from gipo_robot.sim.experts import record_demos
    from gipo_robot.sim.robosuite_env import make_env

    start = time.perf_counter()
    successes, lengths = [], []
    try:
        if out.exists() and not overwrite:
            raise ValueError(f"{out}: already exists (pass --overwrite to replace it)")
        if render_quality not in RENDER_QUALITIES:
            raise ValueError(
                f"--render-quality must be one of {', '.join(RENDER_QUALITIES)}, got {render_quality!r}"
            )
        check_writable(out)
    except ValueError as err:
        raise error_exit(err, as_json) from None
    with stdout_to_stderr(True):
        env = make_env(
            task, cameras=tuple(camera or ()), image_size=image_size, render_quality=render_quality
        )
        task = env.config.task  # robosuite aliases resolved
        try:
            with tqdm(total=episodes, desc=f"collect {task}", file=sys.stderr) as bar:

                def count(ep: dict) -> None:
                    successes.append(ep["episode_success"])
                    lengths.append(len(ep["action"]))
                    bar.update(1)
                    bar.set_postfix(success=f"{np.mean(successes):.0%}")

                record_demos(out, task, episodes, noise, seed, env=env, overwrite=overwrite, on_episode=count)
        finally:
            env.close()
    result = {
        "task": task,
        "episodes": episodes,
        "noise": noise,
        "success_rate": float(np.mean(successes)),
        "successes": int(np.sum(successes)),
        "mean_length": float(np.mean(lengths)),
        "steps": int(np.sum(lengths)),
        "out": str(out),
        "seconds": time.perf_counter() - start,
    }
    human = (
        f"{task}: {result['successes']}/{episodes} successful demos "
        f"({result['success_rate']:.0%}, noise {noise}), {result['steps']} steps -> {out}"
    )
    emit(result, as_json, human)
