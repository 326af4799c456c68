"""write_report end to end on hand-built results: files, paper-style tables, published numbers, HTML, summary."""

import base64
import json
import math
import re
from pathlib import Path

import pytest

from transfer.report import ReportError, write_report

OURS = "resnet50.pth (ours)"
RANDOM = "random init"
PUBLISHED_JSON = Path(__file__).resolve().parents[3] / "transfer" / "published" / "barlow_twins_published_results.json"


def published(table, method):
    """The paper's numbers for ``method``, read independently of transfer.published."""
    with open(PUBLISHED_JSON) as handle:
        section = json.load(handle)[table]
    return dict(zip(section["metric"], section["rows"][method]))


def markdown_row(markdown, first_cell):
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {first_cell} |")]
    assert rows, f"no table row starting with {first_cell!r}"
    return rows


@pytest.fixture
def report(sample_runs, tmp_path):
    stats = tmp_path / "stats.jsonl"
    stats.write_text("".join(json.dumps(record) + "\n" for record in [
        {"step": 10, "epoch": 0, "loss": 5000.0, "lr_weights": 0.1, "lr_biases": 0.01, "images_per_s": 90.0},
        {"step": 20, "epoch": 1, "loss": 4000.0, "lr_weights": 0.1, "lr_biases": 0.01, "images_per_s": 95.0,
         "knn_top1": 30.0}]))
    paths = write_report(sample_runs, tmp_path / "out", pretrain_stats={OURS: stats},
                         skipped={"inat18_linear": "dataset not found: datasets/inat2018 <missing>"})
    return paths


def test_files_are_written(report, tmp_path):
    out = tmp_path / "out"
    assert report["markdown"] == out / "report.md" and report["html"] == out / "report.html"
    assert report["summary"] == out / "summary.json"
    plot_names = {name for name in report if name.startswith("plot:")}
    assert {"plot:per_class_voc07_svm_ap", "plot:pretrain_loss", "plot:pretrain_knn",
            "plot:curves_voc0712_detection_loss"} <= plot_names
    for path in report.values():
        assert path.is_file() and path.stat().st_size > 0
    for name in plot_names:
        assert report[name].parent == out / "plots"
        assert report[name].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_classification_table_like_paper_table_3(report):
    markdown = report["markdown"].read_text()
    assert "| Method | Places205 top-1 | VOC07 SVM mAP | iNat18 top-1 | Source |" in markdown
    for method in ("Barlow Twins", "Supervised"):
        paper = published("transfer_classification", method)
        expected = [paper["places205_top1"], paper["voc07_svm_map"], paper["inat18_top1"]]
        assert markdown_row(markdown, method)[0] == f"| {method} | " + " | ".join(f"{v:.1f}" for v in expected) \
            + " | paper |"
    assert "| Barlow Twins | 54.1 | 86.2 | 46.5 | paper |" in markdown
    assert "| Supervised | 53.2 | 87.5 | 46.7 | paper |" in markdown
    # Places205: trials 57, 50, 52 -> mean 53.0, sample std sqrt(26 / 2) = 3.61; iNat18 not run.
    assert f"| {OURS} | 53.0 ± 3.61 (n=3) | 80.0 | — | measured |" in markdown
    assert f"| {RANDOM} | 10.0 | 30.0 | — | measured |" in markdown
    assert "protocol values: arch=resnet50, mode=images, feature_layer=res5_vissl8k" in markdown
    assert "Places365" not in markdown  # no paper column, and nobody ran it


def test_detection_table_like_paper_table_4_with_engine_rows(report):
    markdown = report["markdown"].read_text()
    assert ("| Method | VOC07+12 AP | VOC07+12 AP50 | VOC07+12 AP75 | COCO box AP | COCO box AP50 | COCO box AP75 "
            "| COCO mask AP | COCO mask AP50 | COCO mask AP75 | Engine |") in markdown
    for method in ("Barlow Twins", "Supervised"):
        values = list(published("transfer_detection", method).values())
        assert markdown_row(markdown, method)[1] == f"| {method} | " + " | ".join(f"{v:.1f}" for v in values) \
            + " | detectron2 R50-C4 (paper) |"
    assert "| Barlow Twins | 56.8 | 82.6 | 63.4 | 39.2 |" in markdown
    ours = markdown_row(markdown, OURS)
    assert f"| {OURS} | 50.5 | 78.0 | 55.2 | — | — | — | — | — | — | detectron2 R50-C4 |" in ours
    # The torchvision result (R50-FPN, total batch 2 in one process) is not beside the paper's: it is in the
    # off-protocol table, whose last column names each differing value.
    paper_table, off_table = markdown.split("## Transfer: detection and instance segmentation", 2)[1:]
    assert "30.0" not in paper_table.split("##")[0]
    assert ("| Backbone | VOC07+12 AP | VOC07+12 AP50 | VOC07+12 AP75 | COCO box AP | COCO box AP50 | COCO box AP75 "
            "| COCO mask AP | COCO mask AP50 | COCO mask AP75 | Engine | Differs from the paper's protocol |") in off_table
    assert (f"| {OURS} | — | — | — | 30.0 | 50.0 | 31.0 | 27.0 | 45.0 | 28.0 | torchvision R50-FPN | "
            "model Mask R-CNN R50-FPN (protocol Mask R-CNN R50-C4), total batch 2 (16) |") in off_table
    assert RANDOM not in paper_table.split("##")[0]


def test_other_tables_when_present(report):
    markdown = report["markdown"].read_text()
    assert "| Barlow Twins | 73.2 | 91.0 | paper |" in markdown  # ImageNet linear, paper Table 1
    assert f"| {OURS} | 60.0 | 85.0 | measured |" in markdown
    assert "| Backbone | top1 | Protocol |" in markdown  # kNN: a task outside the paper's tables
    assert f"| {RANDOM} | 20.0 | as specified |" in markdown
    # low-shot k=1, k=8 (no protocol values recorded: not the protocol)
    assert f"| {OURS} | 20.0 ± 1.50 | 40.0 ± 2.25 | backbone not recorded (protocol resnet50)," in markdown
    assert "semi-supervised" not in markdown  # nobody ran it
    assert f"| {OURS} | mystery_task | toyset/val | — | — | score | 0.5 |" in markdown
    assert "SimCLR" in markdown.split("<details>", 1)[1]  # other published methods in the secondary table


def test_random_init_comparison_and_skipped(report):
    markdown = report["markdown"].read_text()
    assert f"| {OURS} | places205_linear (places205) | top1 | 53.0 | 10.0 | +43.0 | yes |" in markdown
    assert f"| {OURS} | voc07_svm (voc2007) | mAP | 80.0 | 30.0 | +50.0 | yes |" in markdown
    assert "## Not run" in markdown
    assert "- `inat18_linear`: dataset not found: datasets/inat2018 <missing>" in markdown


def test_html_is_self_contained_and_escaped(report):
    html = report["html"].read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "<script" not in html and "<link" not in html and "url(" not in html
    images = re.findall(r'<img [^>]*src="([^"]*)"', html)
    plot_count = sum(name.startswith("plot:") for name in report)
    assert len(images) == plot_count
    for source in images:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(b"\x89PNG")
    assert "datasets/inat2018 &lt;missing&gt;" in html and "<missing>" not in html
    assert "<td>Barlow Twins</td>" in html and ">54.1</td>" in html
    assert "53.0 ± 3.61 (n=3)" in html


def test_summary_json(report, sample_runs):
    summary = json.loads(report["summary"].read_text())
    ours = summary["backbones"][OURS]["tasks"]
    places = ours["places205_linear"]
    assert places["metrics"]["top1"]["mean"] == pytest.approx(53.0)
    assert places["metrics"]["top1"]["std"] == pytest.approx(math.sqrt(13.0))
    assert places["metrics"]["top1"]["n"] == 3 and places["seeds"] == [0, 1, 2]
    assert (places["dataset"], places["split"], places["engine"]) == ("places205", "val", None)
    assert places["weights_sha256"] == ["ab" * 32]
    assert ours["voc0712_detection"]["engine"] == "detectron2"
    assert ours["coco_instance_segmentation"]["metrics"]["mask_AP"] == {"mean": 27.0, "std": None, "n": 1,
                                                                       "within_run_std": None}
    assert summary["backbones"][RANDOM]["tasks"]["voc07_svm"]["metrics"]["mAP"]["mean"] == 30.0
    reference = summary["published"]["tables"]
    assert reference["transfer_classification"]["rows"]["Barlow Twins"]["places205_top1"] == 54.1
    assert reference["transfer_detection"]["rows"]["Supervised"] == published("transfer_detection", "Supervised")
    assert summary["skipped"] == {"inat18_linear": "dataset not found: datasets/inat2018 <missing>"}
    comparison = {(entry["task"], entry["backbone"]): entry for entry in summary["random_init_comparison"]}
    assert comparison[("knn", OURS)]["difference"] == pytest.approx(25.0)
    assert all(entry["beats_baseline"] for entry in comparison.values())


def test_same_inputs_give_the_same_report(sample_runs, tmp_path):
    first = write_report(sample_runs, tmp_path / "a")
    second = write_report(sample_runs, tmp_path / "b")
    assert first.keys() == second.keys()

    def without_timestamp(path):
        return re.sub(r"Generated at [^<\n]*|\"generated_at\": \"[^\"]*\"", "", path.read_text(encoding="utf-8"))

    for name in first:
        if name.startswith("plot:"):
            assert first[name].read_bytes() == second[name].read_bytes(), name
        else:
            assert without_timestamp(first[name]) == without_timestamp(second[name]), name


def test_trials_of_a_detection_task_and_a_missing_random_init(tmp_path):
    from core.results import TaskResult

    protocol = {"arch": "resnet50", "model": "Faster R-CNN R50-C4", "norm": "SyncBN", "total_batch": 16,
                "iterations": 24000, "base_lr": 0.1}
    runs = {"ours": [TaskResult(task="voc0712_detection", dataset="voc2007", split="test", weights="w",
                                engine="detectron2", metrics={"AP": ap, "AP50": 80.0, "AP75": 60.0}, seed=seed,
                                protocol=protocol)
                     for seed, ap in enumerate((50.0, 51.0, 55.0))]}
    markdown = write_report(runs, tmp_path)["markdown"].read_text()
    # AP: mean 52.0, sample std sqrt((4 + 1 + 9) / 2) = sqrt(7) = 2.65.
    assert "| ours | 52.0 ± 2.65 (n=3) | 80.0 ± 0.00 (n=3) | 60.0 ± 0.00 (n=3) | — |" in markdown
    assert "Pretrained vs" not in markdown and "## Not run" not in markdown


def test_bad_pretrain_stats_and_labels(sample_runs, tmp_path):
    with pytest.raises(ReportError, match="not in runs: nobody"):
        write_report(sample_runs, tmp_path, pretrain_stats={"nobody": tmp_path / "stats.jsonl"})
    with pytest.raises(ReportError, match="stats file not found: .*missing.jsonl"):
        write_report(sample_runs, tmp_path, pretrain_stats={OURS: tmp_path / "missing.jsonl"})


def test_optional_columns_and_semi_supervised_table(tmp_path):
    from core.results import TaskResult

    semi_supervised = {"arch": "resnet50", "mode": "images", "image_size": 224, "epochs": 20, "total_batch": 256,
                       "base_lr": 0.5, "backbone_lr": 0.002, "lr_schedule": "multistep [12, 16] x0.2"}

    def result(task, dataset, metrics, protocol):
        return TaskResult(task=task, dataset=dataset, split="val", weights="w", metrics=metrics, seed=0,
                          protocol=protocol)

    runs = {"ours": [result("places365_linear", "places365", {"top1": 44.4, "top5": 70.0}, {}),
                     result("imagenet_semisup_1pct", "imagenet", {"top1": 12.5, "top5": 30.0},
                            {**semi_supervised, "train_subset": "1percent.txt"}),
                     result("imagenet_semisup_10pct", "imagenet", {"top1": 22.5, "top5": 45.0},
                            {**semi_supervised, "train_subset": "10percent.txt"})]}
    markdown = write_report(runs, tmp_path)["markdown"].read_text()
    assert "Places205 top-1" not in markdown  # Places365 is not in the paper: it has its own table
    assert "## places365_linear: " in markdown
    assert "| Backbone | top1 | top5 | Protocol |" in markdown and "| ours | 44.4 | 70.0 |" in markdown
    paper = published("imagenet_semi_supervised", "Barlow Twins")
    assert "| Method | 1% top-1 | 10% top-1 | 1% top-5 | 10% top-5 | Source |" in markdown
    assert (f"| Barlow Twins | {paper['top1@1%']:.1f} | {paper['top1@10%']:.1f} | {paper['top5@1%']:.1f} | "
            f"{paper['top5@10%']:.1f} | paper |") in markdown
    assert "| Barlow Twins | 55.0 | 69.7 | 79.2 | 89.3 | paper |" in markdown
    assert "| ours | 12.5 | 22.5 | 30.0 | 45.0 | measured |" in markdown


CIFAR_KNN_PROTOCOL = {"arch": "resnet18", "stem": "small", "feature_layer": "res5", "feature_dim": 512,
                      "image_size": 32, "knn_k": 200, "knn_temperature": 0.5}


def test_cited_numbers_beside_protocol_true_results_only(tmp_path):
    """CIFAR-10 kNN: mix-bt's 90.52 heads the table; a result made with k=20 goes to a table of its own, and
    STL-10's figure (another trunk) is only named in a note."""
    from core.results import TaskResult

    def knn(task, dataset, top1, label_weights, **protocol_changes):
        return TaskResult(task=task, dataset=dataset, split="test", weights=label_weights, metrics={"top1": top1},
                          protocol={**CIFAR_KNN_PROTOCOL, **protocol_changes})

    runs = {OURS: [knn("cifar10_knn", "cifar10", 71.25, "ours.pth"),
                   knn("stl10_knn", "stl10", 60.0, "ours.pth", image_size=96)],
            "k=20 run": [knn("cifar10_knn", "cifar10", 65.0, "other.pth", knn_k=20)]}
    markdown = write_report(runs, tmp_path / "out")["markdown"].read_text()
    cifar = markdown.split("cifar10_knn: ", 1)[1]
    main_table, off_table = cifar.split("not the cited source's protocol", 1)
    assert "| Mixed Barlow Twins, ResNet-18 (mix-bt) | 90.5 | cited |" in main_table
    assert f"| {OURS} | 71.2 | measured |" in main_table  # 71.25 -> 71.2 (format_stat rounds half to even)
    assert "k=20 run" not in main_table
    assert "| k=20 run | 65.0 | k 20 (protocol 200) |" in off_table
    assert "github.com/wgcban/mix-bt README.md" in main_table
    stl = markdown.split("stl10_knn: ", 1)[1]
    assert "Published figure, not comparable: Mixed Barlow Twins, ResNet-18 (mix-bt) top1 88.94" in stl
    assert "| cited |" not in stl.split("##", 1)[0]
