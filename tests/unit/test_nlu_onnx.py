"""ONNX Runtime backends give the same answers as torch."""

from pathlib import Path

import pytest

from nlu.errors import NLUError
from nlu.predict import load_predictor

TEXTS = ["hello", "where is my order 100234", "I want a human", "🙂", "x" * 3000]


@pytest.fixture(scope="module")
def model_copy(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    out = tmp_path_factory.mktemp("onnx") / "nlu"
    shutil.copytree(tiny_model_dir, out)
    return out


def test_training_writes_both_onnx_files(tiny_model_dir: Path) -> None:
    assert (tiny_model_dir / "model.onnx").is_file() and (tiny_model_dir / "model.int8.onnx").is_file()


def test_fp32_onnx_matches_torch(model_copy: Path) -> None:
    torch_p, onnx_p = load_predictor(model_copy, backend="torch"), load_predictor(model_copy, backend="onnx")
    for a, b in zip(torch_p.parse_batch(TEXTS), onnx_p.parse_batch(TEXTS), strict=True):
        assert a["intent"]["name"] == b["intent"]["name"]
        assert abs(a["intent"]["confidence"] - b["intent"]["confidence"]) < 1e-4
        assert a["sentiment"]["label"] == b["sentiment"]["label"]
        assert [e["value"] for e in a["entities"]] == [e["value"] for e in b["entities"]]


def test_int8_runs_and_missing_files_are_exported(model_copy: Path) -> None:
    (model_copy / "model.int8.onnx").unlink()
    r = load_predictor(model_copy, backend="onnx-int8").parse("hello")
    assert r["intent"]["name"] and (model_copy / "model.int8.onnx").is_file()


def test_unknown_backend(model_copy: Path) -> None:
    with pytest.raises(NLUError, match="unknown NLU backend"):
        load_predictor(model_copy, backend="tensorrt")
