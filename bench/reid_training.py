"""Re-ID training benchmark: rank-1 / mAP on held-out identities for OSNet, the ImageNet backbone, each loss.

Every model is scored on the same evaluation crops (identities never trained on: TUD-Campus,
PETS09-S3MF1, MOT17-02, MOT17-09 and a held-out fifth of the training sequences' identities; the
protocol is in ros2_tracker/training/reid_eval.py):

* OSNet x0.25 (MSMT17), ``../shared/models/osnet_x0_25_msmt17.onnx``, through ONNX Runtime directly
  (256x128 RGB, ImageNet mean/std -> 512-d);
* the untrained ImageNet MobileNetV2 backbone (pooled 1280-d features, 128x64 input);
* the default training config (config/reid_train.yaml) with each loss / mining, trained from the same
  start: contrastive (all pairs, distance-weighted), triplet (batch-hard, semi-hard, distance-weighted),
  multi-similarity, Group Loss. Each run is exported to ONNX and its parity with PyTorch reported.

    .venv/bin/python bench/reid_training.py [--epochs N] [--only triplet-batch_hard ...] [--no-markdown]

Writes bench/out/reid_training/{results.json, <run>/...} and the BENCHMARKS.md section
``reid-training``. About 1.5-3 min per loss on 2 CPU cores (a busy machine doubles it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    BENCHMARKS_MD,
    OUT,
    SHARED,
    command_line,
    machine_line,
    markdown_table,
    update_section,
)

RUNS = [
    ("contrastive", "all"),
    ("contrastive", "distance_weighted"),
    ("triplet", "batch_hard"),
    ("triplet", "semi_hard"),
    ("triplet", "distance_weighted"),
    ("multi_similarity", "all"),
    ("group", "all"),
]
OSNET = SHARED / "models" / "osnet_x0_25_msmt17.onnx"
HELD_OUT = ("TUD-Campus", "PETS09-S3MF1", "MOT17-02-FRCNN", "MOT17-09-FRCNN")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, help="override the config's epochs")
    ap.add_argument("--only", nargs="+", help="runs to train, e.g. triplet-batch_hard group-all")
    ap.add_argument("--threads", type=int, default=0, help="torch / ONNX Runtime threads (0 = default)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--out", type=Path, default=OUT / "reid_training")
    ap.add_argument("--no-markdown", action="store_true", help="do not update BENCHMARKS.md")
    args = ap.parse_args(argv)
    if not (SHARED / "data").is_dir():
        print(f"needs {SHARED / 'data'} (../shared is not on this machine)", file=sys.stderr)
        return 1

    from ros2_tracker.io.params import load_config
    from ros2_tracker.training.config import ReidTrainConfig

    config = load_config(ReidTrainConfig, Path(__file__).resolve().parents[1] / "config" / "reid_train.yaml",
                         data_root=str(SHARED / "data"), num_threads=args.threads, device=args.device)
    if args.epochs:
        config = config.replace(epochs=args.epochs)
    runs = [r for r in RUNS if not args.only or f"{r[0]}-{r[1]}" in args.only]
    results = {"baselines": _baselines(config, args.threads), "runs": {}, "config": config.to_dict()}
    args.out.mkdir(parents=True, exist_ok=True)
    from ros2_tracker.training.train_reid import build_split, train_reid

    split = build_split(config, log=print)
    results["split"] = split.summary()
    for loss, mining in runs:
        name = f"{loss}-{mining}"
        print(f"--- {name}", flush=True)
        result = train_reid(config.replace(loss=loss, mining=mining), split, args.out / name, progress=False)
        results["runs"][name] = {
            "metrics": {k: m._asdict() for k, m in result.metrics.items()},
            "before": {k: result.history[0].get(k) for k in ("rank1", "mAP")},
            "probe_loss": list(result.probe_loss), "train_seconds": result.seconds, "device": result.device,
            "onnx_max_abs_diff": result.onnx.get("max_abs_diff"), "epochs": config.epochs,
        }
        (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    body = _markdown(results, config, argv)
    print(body)
    if not args.no_markdown:
        update_section(BENCHMARKS_MD, "reid-training", body)
    return 0


def _baselines(config, threads: int) -> dict:
    """OSNet (ONNX Runtime) and the untrained ImageNet backbone on the evaluation crops."""
    import numpy as np

    from ros2_tracker.appearance.torch_model import (
        ReidEmbeddingNet,
        ReidModelConfig,
        load_mobilenet_v2_weights,
    )
    from ros2_tracker.training.reid_eval import (
        embed_images,
        evaluate_embeddings,
        onnx_embed_fn,
        torch_embed_fn,
    )
    from ros2_tracker.training.train_reid import build_split

    out = {}
    q = (config.queries_per_identity, config.eval_min_gap_s)
    small = build_split(config)
    if OSNET.is_file():
        big = build_split(config.replace(input_height=256, input_width=128))
        assert big.eval.identity_names == small.eval.identity_names  # the same held-out identities
        fn = onnx_embed_fn(OSNET, threads)
        t = time.perf_counter()
        emb = embed_images(fn, big.eval.images, batch_size=32)
        ms = 1000 * (time.perf_counter() - t) / len(big.eval)
        out["osnet"] = {"metrics": _plain(evaluate_embeddings(emb, big.eval, *q)), "ms_per_crop": ms}
    size = {"input_height": config.input_height, "input_width": config.input_width}
    model = ReidEmbeddingNet(ReidModelConfig(**size))
    load_mobilenet_v2_weights(model.backbone)
    emb = embed_images(torch_embed_fn(model.eval(), "cpu", backbone_only=True), small.eval.images, 128)
    out["imagenet_backbone"] = {"metrics": _plain(evaluate_embeddings(np.asarray(emb), small.eval, *q))}
    return out


def _plain(metrics: dict) -> dict:
    return {k: m._asdict() for k, m in metrics.items()}


def _cells(metrics: dict) -> list[str]:
    cells = [f"{100 * metrics['all']['rank1']:.1f}", f"{100 * metrics['all']['mAP']:.1f}"]
    for seq in HELD_OUT:
        m = metrics.get(seq)
        ok = m and m["num_queries"]
        cells.append(f"{100 * m['rank1']:.0f} / {100 * m['mAP']:.0f} ({m['num_queries']})" if ok else "-")
    return cells


def _markdown(results: dict, config, argv: list[str] | None) -> str:
    header = ["model", "trained with", "rank-1 %", "mAP %", *[f"{s} r1 / mAP (queries)" for s in HELD_OUT],
              "train s", "ONNX max abs diff"]
    rows = []
    base = results["baselines"]
    if "osnet" in base:
        rows.append(["OSNet x0.25 (MSMT17), 256x128", "pretrained, not trained here",
                     *_cells(base["osnet"]["metrics"]), "-", "-"])
    rows.append(["MobileNetV2 ImageNet backbone (1280-d), 128x64", "untrained",
                 *_cells(base["imagenet_backbone"]["metrics"]), "-", "-"])
    for name, r in results["runs"].items():
        loss, mining = name.split("-", 1)
        diff = r["onnx_max_abs_diff"]
        model = f"MobileNetV2 + {config.embedding_dim}-d head, {config.input_height}x{config.input_width}"
        rows.append([model, f"{loss} ({mining})", *_cells(r["metrics"]), f"{r['train_seconds']:.0f}",
                     "-" if diff is None else f"{diff:.1e}"])
    first = next(iter(results["runs"].values()), None)
    before = ""
    if first and first["before"].get("rank1") is not None:
        r1, m_ap = 100 * first["before"]["rank1"], 100 * first["before"]["mAP"]
        before = (" The same network before training (ImageNet backbone + random "
                  f"{config.embedding_dim}-d head): rank-1 {r1:.1f} %, mAP {m_ap:.1f} %.")
    speed = ""
    if "osnet" in base:
        ms = base["osnet"]["ms_per_crop"]
        speed = f" OSNet through ONNX Runtime: {ms:.1f} ms per crop (batches of 32)."
    device = first["device"] if first else "cpu"
    return "\n".join([
        markdown_table(header, rows, "ll" + "r" * (len(header) - 2)),
        "",
        f"Split: {results['split']}. Queries: {config.queries_per_identity} per identity, matched "
        f"against the gallery of their own sequence; same-identity crops within {config.eval_min_gap_s} s "
        f"of the query are ignored. Training: {config.epochs} epochs of P x K = "
        f"{config.p_identities} x {config.k_crops}, "
        f"{config.freeze_blocks} of 19 backbone blocks frozen, Adam lr {config.lr:g} "
        f"(head x{config.head_lr_scale:g}), on {device}.{before}{speed}",
        "",
        f"`{command_line('bench/reid_training.py', argv)}` · {machine_line()}",
    ])


if __name__ == "__main__":
    sys.exit(main())
