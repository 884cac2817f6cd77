"""The ``qcnn`` command: every step of the reproduction and every experiment, every knob a flag.

Mistakes a person can fix (missing data or file, a bad flag or experiment file, a run made with
other settings) are reported in one line; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from qcnn import paths
from qcnn.constants import MODEL_KINDS
from qcnn.errors import QcnnError


def _add_dirs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None, help="HAM10000 folder (default: $QCNN_DATA_DIR)")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=paths.cli_results_dir(),
        help="where results are written (default: $QCNN_RESULTS_DIR, else ./results)",
    )
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=paths.cli_checkpoint_dir(),
        help="where checkpoints are read and written (default: $QCNN_CHECKPOINT_DIR, else ./checkpoints)",
    )


def _add_runtime(parser: argparse.ArgumentParser) -> None:
    from qcnn.config import DEVICES

    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto picks CUDA, then MPS, then the CPU")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="feature cache, 2-4 GB (default: $QCNN_CACHE_DIR, else ~/.cache/qcnn)",
    )


def _add_config_flags(parser: argparse.ArgumentParser, config_cls: type, overrides: bool = False) -> None:
    """One flag per dataclass field, with its help. ``overrides``: only given flags reach the namespace."""
    group = parser.add_argument_group(f"{config_cls.__name__} (recorded in config.json)")
    for f in fields(config_cls):
        if f.default is MISSING:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = argparse.SUPPRESS if overrides else f.default
        help_text = f"{f.metadata.get('help', '')} (default: {f.default})"
        if f.type in (bool, "bool"):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        else:
            kind = {"int": int, "float": float, "str": str}.get(str(f.type), type(f.default))
            group.add_argument(flag, type=kind, default=default, help=help_text, metavar=f.name.upper())


def _config_from(args: argparse.Namespace, config_cls: type, base: Any | None = None) -> Any:
    from qcnn.config import config_from

    given = {f.name: getattr(args, f.name) for f in fields(config_cls) if hasattr(args, f.name)}
    return config_from(config_cls, given, base)


def _workspace(args: argparse.Namespace, eval_precision: str = "fp32"):
    from qcnn.runs import Workspace

    return Workspace(
        args.results_dir,
        args.checkpoint_dir,
        args.data_dir,
        getattr(args, "cache_dir", None),
        getattr(args, "device", "auto"),
        eval_precision,
    )


def cmd_split(args: argparse.Namespace) -> None:
    from qcnn.data import read_metadata
    from qcnn.io import write_csv
    from qcnn.runs import split_path
    from qcnn.split import make_split

    split = make_split(read_metadata(args.data_dir), seed=args.split_seed, unit=args.unit)
    target = split_path(_workspace(args), args.unit)
    write_csv(split, target)
    print(f"wrote {target}")
    print(split.groupby(["pool", "label"]).size().unstack(fill_value=0).to_string())


def cmd_pretrain(args: argparse.Namespace) -> None:
    from qcnn.backbone import BACKBONE_FILE, imagenet_backbone, save_backbone
    from qcnn.config import PretrainConfig
    from qcnn.data import resolve_data_dir
    from qcnn.pretrain import pretrain_backbone
    from qcnn.runs import load_split
    from qcnn.runtime import resolve_device

    target = args.checkpoint_dir / (args.output or BACKBONE_FILE)
    if args.backbone == "imagenet":
        save_backbone(imagenet_backbone(), target, source="imagenet")
        print(f"wrote {target} (torchvision IMAGENET1K_V1)")
        return
    history = args.results_dir / (
        Path(args.output).stem + "_history.csv" if args.output else paths.BACKBONE_HISTORY_FILE
    )
    pretrain_backbone(
        load_split(_workspace(args), "lesion"),
        resolve_data_dir(args.data_dir),
        target,
        history,
        _config_from(args, PretrainConfig),
        resolve_device(args.device),
    )
    print(f"wrote {target}")


def cmd_train(args: argparse.Namespace) -> None:
    from qcnn.config import MODEL_PRESETS, ModelConfig, RunSpec, TrainConfig
    from qcnn.runs import execute_run, run_paths

    model = _config_from(args, ModelConfig, MODEL_PRESETS[args.model])
    spec = RunSpec(
        args.name or args.model,
        args.seed,
        model,
        _config_from(args, TrainConfig),
        args.fraction,
        args.split,
        args.backbone,
    )
    ws = _workspace(args, args.eval_precision)
    record = execute_run(spec, ws, experiment=None if args.name is None else "adhoc", force=args.force)
    run_dir, _ = run_paths(spec, ws, None if args.name is None else "adhoc")
    metrics = _read_json(run_dir / "metrics.json")
    print(
        f"{spec.name}: test AUC {metrics['auc']:.4f}, accuracy {metrics['accuracy']:.4f} "
        f"(trained {record.get('train_seconds', 0):.0f} s) -> {run_dir}"
    )


def cmd_evaluate(args: argparse.Namespace) -> None:
    from qcnn.config import RunSpec
    from qcnn.evaluate import evaluate_run, summarize
    from qcnn.runs import expected_record, load_split, run_paths, write_record
    from qcnn.runtime import resolve_device

    ws = _workspace(args, args.precision).with_data()
    device = resolve_device(args.device)
    configs = sorted((args.results_dir / paths.RUNS_DIR).glob("*/config.json"))
    if not configs:
        raise _missing(f"No trained runs under {args.results_dir / paths.RUNS_DIR}", "qcnn train --model qcnn")
    for config in configs:
        spec = RunSpec.from_json(_read_json(config))
        run_dir, weights = run_paths(spec, ws)
        if not weights.is_file():
            print(f"{spec.name}: skipped, its weights {weights} are not here")
            continue
        split = load_split(ws, spec.split)
        m = evaluate_run(
            spec, split, ws.data_dir, run_dir, weights, ws.checkpoint_dir, args.precision, device, ws.cache_dir
        )
        write_record(run_dir, expected_record(spec, ws, split), device)
        print(f"{spec.name}: accuracy {m['accuracy']:.4f} AUC {m['auc']:.4f} ({args.precision})")
    _print_summary(summarize(args.results_dir, args.n_bootstrap))


def cmd_summarize(args: argparse.Namespace) -> None:
    """summary.json again from the committed per-run files (predictions, histories, configs): no weights needed."""
    from qcnn.evaluate import summarize

    _print_summary(summarize(args.results_dir, args.n_bootstrap))


def cmd_referee(args: argparse.Namespace) -> None:
    """results/referee.json: the threshold question, calibration and subgroups, from the committed runs."""
    from qcnn.referee import REFEREE_FILE, referee

    out = referee(args.results_dir, args.data_dir, args.n_bootstrap)
    verdict = "is" if out["reported_threshold"]["explainable_by_threshold"] else "is not"
    print(
        f"wrote {args.results_dir / REFEREE_FILE}: the reported headline {verdict} explainable by threshold alone; "
        f"subgroups {out['subgroups'].get('status', 'measured')}; "
        f"validation thresholds {out['validation_thresholds']['status']}"
    )


def cmd_ledger(args: argparse.Namespace) -> None:
    """results/ledger.json and the README's generated tables (per-metric verdicts, claim ledger)."""
    from qcnn.ledger import LEDGER_FILE, write_ledger

    ledger = write_ledger(args.results_dir, None if args.no_readme else args.readme)
    print(f"wrote {args.results_dir / LEDGER_FILE}" + ("" if args.no_readme else f" and {args.readme}"))
    for claim in ledger["claims"]:
        print(f"  {claim['status']:17s} {claim['claim']}")


def cmd_reproduce(args: argparse.Namespace) -> None:
    from qcnn.config import PretrainConfig, TrainConfig
    from qcnn.reproduce import reproduce

    summary = reproduce(
        _workspace(args),
        args.seeds,
        _config_from(args, TrainConfig),
        PretrainConfig(epochs=args.pretrain_epochs),
        args.n_bootstrap,
        args.force,
    )
    _print_summary(summary)


def cmd_sweep(args: argparse.Namespace) -> None:
    from qcnn.summary import summarize_experiment
    from qcnn.sweep import load_experiment, run_experiment

    experiment = load_experiment(args.experiment)
    ws = _workspace(args)
    if not args.summary_only:
        run_experiment(
            experiment,
            ws,
            args.executor,
            args.force,
            **(
                {"address": args.ray_address, "num_cpus": args.num_cpus, "num_gpus": args.num_gpus}
                if args.executor == "ray"
                else {}
            ),
        )
    summary = summarize_experiment(experiment, ws, require_all=not args.summary_only)
    print(f"wrote {summary['path']}: {summary['n_complete']}/{summary['n_runs']} runs")


def cmd_leakage(args: argparse.Namespace) -> None:
    """Lesion leakage of both split protocols, and the models on the image split's leak-free part."""
    from qcnn.leakage import LEAKAGE_FILE, write_leakage

    result = write_leakage(_workspace(args), args.experiment, args.reference, args.n_bootstrap)
    image = result["splits"]["image"]
    print(f"wrote {args.results_dir / LEAKAGE_FILE}")
    print(
        f"image split: {image['test_images_with_sibling_in_train_or_val']:,} of {image['n_test']:,} test images have a "
        f"lesion sibling in train or val; lesion split: "
        f"{result['splits']['lesion']['test_images_with_sibling_in_train_or_val']}"
    )
    models = result["models"]
    print(f"models scored on seeds {models['seeds']}" if models else "no seed has both models on both splits yet")


def cmd_backbones(args: argparse.Namespace) -> None:
    """Both models on a weaker and a stronger backbone, and how a better backbone moves each and their gap."""
    from qcnn.backbones import BACKBONES_FILE, write_backbones

    result = write_backbones(_workspace(args), args.weak, args.strong, args.n_bootstrap)
    print(f"wrote {args.results_dir / BACKBONES_FILE}")
    models = result["models"]
    if not models:
        print(
            f"no seed has both models on both backbones yet ({result['weak']['experiment']}, "
            f"{result['strong']['experiment']})"
        )
        return
    change = models["change"]["difference"]
    low, high = change["ci95"]["auc"]
    print(
        f"seeds {models['seeds']}: QCNN − classical AUC moves by {100 * change['mean']['auc']:+.1f} points "
        f"[{100 * low:+.1f}, {100 * high:+.1f}] from {result['weak']['backbone']} to {result['strong']['backbone']}"
    )


def cmd_ood_reference(args: argparse.Namespace) -> None:
    """The app's out-of-distribution reference: pooled layer3 statistics of the train pool, test-pool threshold."""
    from qcnn.ood import build_reference

    reference, distances, path = build_reference(_workspace(args).with_data())
    print(
        f"wrote {path}: threshold {reference.threshold:.2f} (test pool's {reference.percentile:g}th percentile; "
        f"{int((distances > reference.threshold).sum())} of {reference.n_test} test images above it), "
        f"from {reference.n_train} train images"
    )


def _print_summary(summary: dict) -> None:
    diff = summary["difference"]
    print(f"seeds {summary['seeds']}; QCNN minus classical, mean over seeds [95% interval, seeds and lesions]:")
    for metric, (lo, hi) in diff["ci95"].items():
        print(f"  {metric:18s} {diff['mean'][metric]:+.4f}  [{lo:+.4f}, {hi:+.4f}]")
    print(f"McNemar exact p = {summary['mcnemar']['p_value']:.4g}")


def cmd_hardware(args: argparse.Namespace) -> None:
    """results/shots.json, noise.json, fourier.json: the seed-0 QCNN as a quantum computer would run it."""
    if args.part == "fourier":
        from qcnn import fourier

        fourier.run(args.results_dir, args.checkpoint_dir)
        return
    from qcnn.runs import load_split

    ws = _workspace(args).with_data()
    part = importlib.import_module(f"qcnn.{args.part}")
    part.run(load_split(ws, "lesion"), ws.data_dir, args.results_dir, args.checkpoint_dir)


def cmd_map(args: argparse.Namespace) -> None:
    """results/map.csv and map.json: each test image's pooled 256-D outcome vector per model, in 2-D (PCA, UMAP)."""
    from qcnn import embedding
    from qcnn.runs import load_split

    ws = _workspace(args).with_data()
    embedding.run(load_split(ws, "lesion"), ws.data_dir, args.results_dir, args.checkpoint_dir, "qcnn map")


BENCHMARKS = {
    "quantum": "quantum_layer.py",
    "training": "training_step.py",
    "inference": "inference.py",
    "agreement": "app_agreement.py",
    "app": "app_pages.py",
}


def cmd_app(args: argparse.Namespace) -> None:
    """Serve the app with the models loading from the process's start, beside the server's own start-up
    (``--preload``: the first page waits for them, with a spinner, so that everything after it is warm).

    On a 2-core CPU this delays the server's first answer by under a second and brings a visitor's first
    Try-it predictions about as much sooner (README, "Measured": the app).
    """
    from streamlit.web import cli as streamlit_cli

    from qcnn.app import model_cache
    from qcnn.app.server import APP

    # a worker thread; the page scripts find this same load (with --preload they wait for it, with a spinner)
    (model_cache.preload if args.preload else model_cache.start_loading)()
    sys.argv = ["streamlit", "run", str(APP), *args.streamlit_args]
    streamlit_cli.main()


def cmd_bench(args: argparse.Namespace) -> None:
    import runpy

    script = paths.REPO_ROOT / "benchmarks" / BENCHMARKS[args.which]
    if not script.is_file():
        raise _missing(f"{script} not found (benchmarks live in the repository, not the wheel)", "git clone")
    sys.argv = [str(script), *args.bench_args]
    runpy.run_path(str(script), run_name="__main__")


def _missing(what: str, command: str) -> QcnnError:
    from qcnn.errors import MissingFileError

    return MissingFileError(f"{what}: run `{command}` first.")


def _read_json(path: Path) -> dict:
    import json

    if not path.is_file():
        raise _missing(f"{path} not found", "qcnn train")
    return json.loads(path.read_text())


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def _command(sub: argparse._SubParsersAction, name: str, help: str, func) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help)
    _add_dirs(parser)
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    from qcnn.config import EXECUTORS, PRECISIONS, SPLIT_UNITS, ModelConfig, PretrainConfig, TrainConfig

    parser = argparse.ArgumentParser(prog="qcnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = _command(
        sub,
        "split",
        "write a split protocol: lesion-disjoint (split.csv) or the study's image-level (split_image.csv)",
        cmd_split,
    )
    p.add_argument("--unit", choices=SPLIT_UNITS, default="lesion", help="draw the pools by lesion or by image")
    p.add_argument("--split-seed", type=int, default=0, help="the split's seed (default: 0)")

    p = _command(
        sub, "pretrain-backbone", "pretrain conv1..layer3 on the benign pool (resumes if interrupted)", cmd_pretrain
    )
    _add_runtime(p)
    _add_config_flags(p, PretrainConfig)
    p.add_argument(
        "--backbone",
        choices=("domain", "imagenet"),
        default="domain",
        help="domain: pretrain here; imagenet: torchvision's weights (needs internet)",
    )
    p.add_argument(
        "--output", default=None, help="checkpoint file name in --checkpoint-dir (default: backbone.safetensors)"
    )

    p = _command(sub, "train", "train and evaluate one run (a model configuration at one seed)", cmd_train)
    _add_runtime(p)
    p.add_argument("--model", choices=MODEL_KINDS, required=True, help="the preset the model flags below override")
    p.add_argument("--name", default=None, help="a variant name; runs with one live under results/experiments/adhoc/")
    p.add_argument("--seed", type=int, default=0, help="the run's seed (default: 0)")
    p.add_argument("--fraction", type=float, default=1.0, help="fraction of the train pool, in (0, 1] (default: 1)")
    p.add_argument("--split", choices=SPLIT_UNITS, default="lesion", help="the split protocol (default: lesion)")
    p.add_argument(
        "--backbone",
        default=paths.BACKBONE_FILE,
        help=f"the pretrained backbone, a file in the checkpoint folder (default: {paths.BACKBONE_FILE}; "
        "another one: `qcnn pretrain-backbone --output NAME`)",
    )
    p.add_argument("--eval-precision", choices=PRECISIONS, default="fp32", help="precision of the test evaluation")
    p.add_argument("--force", action="store_true", help="re-run a finished run made with other settings")
    _add_config_flags(p, ModelConfig, overrides=True)
    _add_config_flags(p, TrainConfig)

    p = _command(
        sub,
        "evaluate",
        "re-score every run of the reproduction whose weights are here; write summary.json",
        cmd_evaluate,
    )
    _add_runtime(p)
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help="fp32 (default) matches the app exactly")
    p.add_argument("--n-bootstrap", type=_positive_int, default=2000, help="lesion bootstrap resamples")

    p = _command(sub, "summarize", "rewrite summary.json from the runs' predictions.csv (no weights)", cmd_summarize)
    p.add_argument("--n-bootstrap", type=_positive_int, default=2000, help="lesion bootstrap resamples")

    p = _command(sub, "referee", "threshold analysis, calibration, subgroups -> results/referee.json", cmd_referee)
    p.add_argument("--n-bootstrap", type=_positive_int, default=1000, help="lesion bootstrap resamples")

    p = _command(sub, "ledger", "the claim ledger -> results/ledger.json and the README's tables", cmd_ledger)
    p.add_argument("--readme", type=Path, default=paths.REPO_ROOT / "README.md", help="the README to update")
    p.add_argument("--no-readme", action="store_true", help="write ledger.json only")

    p = _command(sub, "reproduce", "the whole chain, resumable: split, backbone, seeds, evaluation", cmd_reproduce)
    _add_runtime(p)
    _add_config_flags(p, TrainConfig)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds (default: 0 1 2 3 4)")
    p.add_argument(
        "--pretrain-epochs",
        type=_positive_int,
        default=PretrainConfig.epochs,
        help="backbone pretraining epochs if it must be pretrained",
    )
    p.add_argument("--n-bootstrap", type=_positive_int, default=2000, help="lesion bootstrap resamples")
    p.add_argument("--force", action="store_true", help="re-run finished runs made with other settings")

    p = _command(
        sub, "sweep", "run an experiment file (variants x seeds x fractions x splits), then summarise it", cmd_sweep
    )
    _add_runtime(p)
    p.add_argument("experiment", type=Path, help="an experiment file, e.g. experiments/controls.toml")
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: one run after another in this process; ray: each run a Ray task",
    )
    p.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: start a local instance)")
    p.add_argument("--num-cpus", type=_non_negative_float, default=2, help="CPUs per Ray task (default: 2)")
    p.add_argument("--num-gpus", type=_non_negative_float, default=0, help="GPUs per Ray task (default: 0)")
    p.add_argument("--force", action="store_true", help="re-run finished runs made with other settings")
    p.add_argument("--summary-only", action="store_true", help="only summarise the runs finished so far")

    p = _command(sub, "leakage", "lesion leakage of the image-level split -> results/leakage.json", cmd_leakage)
    p.add_argument("--experiment", type=Path, default=Path("experiments/imagesplit.toml"), help="image-split runs")
    p.add_argument(
        "--reference", type=Path, default=Path("experiments/lowdata.toml"), help="lesion-split runs (its fraction 1)"
    )
    p.add_argument("--n-bootstrap", type=_positive_int, default=2000, help="lesion bootstrap resamples")

    p = _command(sub, "backbones", "both models on two backbones, the change -> results/backbones.json", cmd_backbones)
    p.add_argument("--weak", type=Path, default=Path("experiments/controls.toml"), help="runs on the weaker backbone")
    p.add_argument(
        "--strong", type=Path, default=Path("experiments/backbone24.toml"), help="runs on the stronger backbone"
    )
    p.add_argument("--n-bootstrap", type=_positive_int, default=2000, help="lesion bootstrap resamples")

    p = _command(sub, "hardware", "the seed-0 QCNN under finite shots, gate noise; its Fourier spectrum", cmd_hardware)
    p.add_argument(
        "part",
        choices=("shots", "noise", "fourier"),
        help="shots: finite shot counts -> shots.json; noise: depolarizing and readout noise -> noise.json; "
        "fourier: the circuit's exact spectrum -> fourier.json",
    )

    p = _command(
        sub,
        "ood-reference",
        "the app's out-of-distribution check: QCNN layer3 statistics of the train pool, a test-pool threshold",
        cmd_ood_reference,
    )
    _add_runtime(p)

    _command(
        sub, "map", "each test image's pooled outcome vector per model, projected to 2-D -> results/map.csv", cmd_map
    )

    p = sub.add_parser("app", help="serve the app (streamlit run) with the models already loading: for demos")
    p.add_argument(
        "--preload",
        action="store_true",
        help="the first page waits, with a spinner, until the models and Grad-CAM are loaded: it comes "
        "seconds later, and every Try it and Grad-CAM after it is warm",
    )
    p.add_argument(
        "streamlit_args", nargs=argparse.REMAINDER, help="passed on to `streamlit run`, e.g. --server.port 8502"
    )
    p.set_defaults(func=cmd_app)

    p = sub.add_parser("bench", help="run a benchmark script from benchmarks/")
    p.add_argument("which", choices=sorted(BENCHMARKS), help="which benchmark (results/bench_<which>.json)")
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="passed on to the script")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args, unknown = build_parser().parse_known_args(argv)
    if unknown and args.command != "app":  # only `qcnn app` passes options on (to streamlit)
        build_parser().error(f"unrecognized arguments: {' '.join(unknown)}")
    if unknown:
        args.streamlit_args = [*unknown, *args.streamlit_args]
    try:
        args.func(args)
    except QcnnError as err:
        print(f"qcnn {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
