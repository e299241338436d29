"""``gipo-robot`` commands on success labels: train-reward (a success classifier) and label (relabel)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from gipo_robot.cli.common import JsonFlag, app, emit, error_exit, stdout_to_stderr

StoreArg = Annotated[Path, typer.Argument(help="An episode store (.zarr folder).")]


def _rates(name: str, m: dict) -> str:
    def rate(k: int, n: int, r: float | None) -> str:
        return f"{k}/{n} ({r:.3f})" if r is not None else f"{k}/{n} (not measured)"

    acc = "n/a" if m["accuracy"] is None else f"{m['accuracy']:.3f}"
    return (
        f"{name}: {m['episodes']} episodes ({m['successes']} successful, {m['failures']} failed); "
        f"false positives {rate(m['false_positives'], m['failures'], m['false_positive_rate'])}, "
        f"false negatives {rate(m['false_negatives'], m['successes'], m['false_negative_rate'])}, "
        f"accuracy {acc}"
    )


@app.command("train-reward")
def train_reward(
    store: StoreArg,
    out: Annotated[Path, typer.Option(help="Folder for classifier.json and model.safetensors.")],
    held_out: Annotated[
        float, typer.Option(min=0.0, max=0.99, help="Fraction of each label's episodes held out.")
    ] = 0.25,
    seed: int = 0,
    feature: Annotated[
        list[str] | None,
        typer.Option(
            help="Observation feature to read (repeatable; default: every low-dim one except obs.object, "
            "and every camera)."
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training steps.")] = 30,
    as_json: JsonFlag = False,
) -> None:
    """Train a success classifier on a store's labelled episodes; report held-out false-positive and
    false-negative rates."""
    from gipo_robot.datasets import DatasetError
    from gipo_robot.reward import train_classifier

    try:
        with stdout_to_stderr(as_json):
            report = train_classifier(
                store, out, features=feature, held_out=held_out, seed=seed, epochs=epochs, progress=True
            )
    except (ValueError, DatasetError) as err:
        raise error_exit(err, as_json) from err
    result = report.to_dict()
    for split in ("held_out", "train"):
        result[split] = {k: v for k, v in result[split].items() if k != "per_episode"}
    human = "\n".join(
        [
            f"success classifier -> {report.path} ({report.seconds:.1f} s), reading "
            + ", ".join(report.features),
            _rates("held-out", result["held_out"]),
            _rates("training", result["train"]),
            "a fine-tuning run refuses it when its held-out false-positive rate is above the run's limit",
        ]
    )
    emit(result, as_json, human)


@app.command()
def label(
    store: StoreArg,
    episode: Annotated[int | None, typer.Option(help="The episode to relabel (else: ask for each).")] = None,
    success: Annotated[bool, typer.Option("--success", help="Label --episode successful.")] = False,
    failure: Annotated[bool, typer.Option("--failure", help="Label --episode failed.")] = False,
    unreviewed: Annotated[
        bool, typer.Option("--unreviewed", help="Interactive: only episodes never relabelled before.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Relabel stored episodes: one with --episode N --success/--failure, or each in turn with one key
    (y success, n failure, s/Enter skip, q quit)."""
    from gipo_robot.datasets import DatasetError, open_dataset
    from gipo_robot.reward.label import TerminalRequired, label_interactively, relabel_episode

    try:
        if success and failure:
            raise ValueError("give one of --success and --failure, not both")
        if episode is None and (success or failure):
            raise ValueError("--success/--failure label one episode: give it with --episode N")
        if episode is not None and not (success or failure):
            raise ValueError(f"--episode {episode} needs --success or --failure")
        opened = open_dataset(store, mode="a")
        if episode is not None:
            result = relabel_episode(opened, episode, success)
            human = (
                f"{result['store']}: episode {result['episode']} "
                f"{'success' if result['from'] else 'failure'} -> {'success' if result['to'] else 'failure'}"
            )
        else:
            prompts = sys.stderr if as_json else sys.stdout
            result = label_interactively(opened, out=prompts, unreviewed=unreviewed)
            human = (
                f"{result['store']}: {result['reviewed']} labelled ({len(result['changed'])} changed), "
                f"{result['skipped']} skipped{', quit' if result['quit'] else ''}"
            )
    except (ValueError, DatasetError, TerminalRequired) as err:
        raise error_exit(err, as_json) from err
    emit(result, as_json, human)
