"""The ``qcnn`` command: every step of the reproduction, every knob a flag."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from qcnn import paths
from qcnn.data import DataError


def _add_dirs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None, help="HAM10000 folder (default: $QCNN_DATA_DIR)")
    parser.add_argument("--results-dir", type=Path, default=paths.results_dir())
    parser.add_argument("--checkpoint-dir", type=Path, default=paths.checkpoint_dir())


def _add_config_flags(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """One flag per dataclass field, so no knob is hidden in code."""
    for f in fields(config_cls):
        flag = "--" + f.name.replace("_", "-")
        if f.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            kind = {"int": int, "float": float, "str": str}.get(str(f.type), type(f.default))
            parser.add_argument(flag, type=kind, default=f.default, help=f"(default: {f.default})")


def _config_from(args: argparse.Namespace, config_cls: type):
    return config_cls(**{f.name: getattr(args, f.name) for f in fields(config_cls)})


def cmd_split(args: argparse.Namespace) -> None:
    from qcnn.data import read_metadata
    from qcnn.split import make_split, write_split

    split = make_split(read_metadata(args.data_dir), seed=args.split_seed)
    write_split(split, args.results_dir / paths.SPLIT_FILE)
    print(split.groupby(["pool", "label"]).size().unstack(fill_value=0).to_string())


def cmd_pretrain(args: argparse.Namespace) -> None:
    from qcnn.backbone import BACKBONE_FILE, imagenet_backbone, save_backbone
    from qcnn.data import resolve_data_dir
    from qcnn.pretrain import PretrainConfig, pretrain_backbone
    from qcnn.split import read_split

    target = args.checkpoint_dir / BACKBONE_FILE
    if args.backbone == "imagenet":
        save_backbone(imagenet_backbone(), target, source="imagenet")
        print(f"wrote {target} (torchvision IMAGENET1K_V1)")
        return
    split = read_split(_require(args.results_dir / paths.SPLIT_FILE, "qcnn split"))
    pretrain_backbone(split, resolve_data_dir(args.data_dir), target,
                      args.results_dir / paths.BACKBONE_HISTORY_FILE, _config_from(args, PretrainConfig))
    print(f"wrote {target}")


def cmd_train(args: argparse.Namespace) -> None:
    from qcnn.data import resolve_data_dir
    from qcnn.split import read_split
    from qcnn.train import TrainConfig, train_run

    split = read_split(_require(args.results_dir / paths.SPLIT_FILE, "qcnn split"))
    history = train_run(args.model, args.seed, split, resolve_data_dir(args.data_dir), args.results_dir,
                        args.checkpoint_dir, _config_from(args, TrainConfig))
    best = history.loc[history.val_auc.idxmax()]
    print(f"{args.model} seed {args.seed}: best val AUC {best.val_auc:.4f} at epoch {int(best.epoch)}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from qcnn.data import resolve_data_dir
    from qcnn.evaluate import evaluate_run, summarize, trained_runs
    from qcnn.split import read_split

    split = read_split(_require(args.results_dir / paths.SPLIT_FILE, "qcnn split"))
    data_dir = resolve_data_dir(args.data_dir)
    runs = trained_runs(args.results_dir)
    if not runs:
        raise FileNotFoundError(f"No trained runs under {args.results_dir / paths.RUNS_DIR}: run `qcnn train`.")
    for kind, seed in runs:
        m = evaluate_run(kind, seed, split, data_dir, args.results_dir, args.checkpoint_dir)
        print(f"{paths.run_name(kind, seed)}: accuracy {m['accuracy']:.4f} AUC {m['auc']:.4f}")
    summary = summarize(args.results_dir, args.n_bootstrap)
    _print_summary(summary)


def cmd_reproduce(args: argparse.Namespace) -> None:
    from qcnn.pretrain import PretrainConfig
    from qcnn.reproduce import reproduce
    from qcnn.train import TrainConfig

    pretrain_cfg = PretrainConfig(epochs=args.pretrain_epochs)
    summary = reproduce(args.data_dir, args.results_dir, args.checkpoint_dir, args.seeds,
                        _config_from(args, TrainConfig), pretrain_cfg, args.n_bootstrap)
    _print_summary(summary)


def _print_summary(summary: dict) -> None:
    print(f"seeds {summary['seeds']}; QCNN minus classical, seed {summary['app_seed']} [95% lesion bootstrap]:")
    for metric, d in summary["difference"]["seed0"].items():
        print(f"  {metric:18s} {d['value']:+.4f}  [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]")
    print(f"McNemar exact p = {summary['mcnemar']['p_value']:.4g}")


BENCHMARKS = {"quantum": "quantum_layer.py", "training": "training_step.py",
              "inference": "inference.py", "app": "app_pages.py"}


def cmd_bench(args: argparse.Namespace) -> None:
    import runpy

    script = paths.REPO_ROOT / "benchmarks" / BENCHMARKS[args.which]
    if not script.is_file():
        raise FileNotFoundError(f"{script} not found (benchmarks live in the repository, not the wheel)")
    sys.argv = [str(script), *args.bench_args]
    runpy.run_path(str(script), run_name="__main__")


def _require(path: Path, command: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `{command}` first.")
    return path


def _command(sub: argparse._SubParsersAction, name: str, help: str, func, config: type | None = None
             ) -> argparse.ArgumentParser:
    """A pipeline subcommand: the shared folder flags, its config's flags, its handler."""
    parser = sub.add_parser(name, help=help)
    _add_dirs(parser)
    if config is not None:
        _add_config_flags(parser, config)
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    from qcnn.pretrain import PretrainConfig
    from qcnn.train import TrainConfig

    parser = argparse.ArgumentParser(prog="qcnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = _command(sub, "split", "write the lesion-disjoint split to results/split.csv", cmd_split)
    p.add_argument("--split-seed", type=int, default=0)

    p = _command(sub, "pretrain-backbone", "pretrain conv1..layer3 on the benign pool", cmd_pretrain, PretrainConfig)
    p.add_argument("--backbone", choices=("domain", "imagenet"), default="domain")

    p = _command(sub, "train", "train one model for one seed from cached prefix features", cmd_train, TrainConfig)
    p.add_argument("--model", choices=paths.MODEL_KINDS, required=True)
    p.add_argument("--seed", type=int, default=0)

    p = _command(sub, "evaluate", "score every trained run on the test pool; write summary.json", cmd_evaluate)
    p.add_argument("--n-bootstrap", type=int, default=2000)

    p = _command(sub, "reproduce", "the whole chain, resumable: split, backbone, seeds, evaluation", cmd_reproduce,
                 TrainConfig)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--pretrain-epochs", type=int, default=PretrainConfig.epochs)
    p.add_argument("--n-bootstrap", type=int, default=2000)

    p = sub.add_parser("bench", help="run a benchmark script from benchmarks/")
    p.add_argument("which", choices=sorted(BENCHMARKS))
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="passed on to the script")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (DataError, FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"qcnn {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
