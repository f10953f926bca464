"""ONNX Runtime inference for the joint model (fp32, or dynamic int8 quantization).

The exported graph takes ``input_ids`` and ``attention_mask`` [B,T] (int64) and returns
``intent`` [B,I], ``sentiment`` [B,S] and ``tags`` [B,T,G] logits, like the torch model.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from nlu.errors import NLUError
from nlu.model import JointClassifier

log = logging.getLogger(__name__)
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
OUTPUTS = ("intent", "sentiment", "tags")


class _Outputs(torch.nn.Module):
    """Tuple outputs for the exporter."""

    def __init__(self, model: JointClassifier):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(input_ids, attention_mask)
        return tuple(out[k] for k in OUTPUTS)


def export(model: JointClassifier, out_dir: Path, *, quantize: bool = True) -> list[Path]:
    """Write ``model.onnx`` (and ``model.int8.onnx``) into ``out_dir``; returns the paths."""
    model = model.cpu().eval()
    dummy = (torch.tensor([[101, 7592, 102]]), torch.ones(1, 3, dtype=torch.long))
    dynamic = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}}
    dynamic.update({"intent": {0: "batch"}, "sentiment": {0: "batch"}, "tags": {0: "batch", 1: "tokens"}})
    fp32 = out_dir / FP32_FILE
    torch.onnx.export(
        _Outputs(model), dummy, str(fp32), input_names=["input_ids", "attention_mask"],
        output_names=list(OUTPUTS), dynamic_axes=dynamic, opset_version=17, dynamo=False,
    )  # fmt: skip
    paths = [fp32]
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.WARNING)  # the quantizer logs one INFO line per tensor on the root logger
        try:
            quantize_dynamic(str(fp32), str(out_dir / INT8_FILE), weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        paths.append(out_dir / INT8_FILE)
    return paths


class OnnxRunner:
    """Callable like the torch model: (input_ids, attention_mask) → dict of logits tensors."""

    def __init__(self, path: Path, threads: int = 0):
        import onnxruntime as ort

        if not path.is_file():
            raise NLUError(f"no ONNX model at {path} (python -m nlu.train writes one)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        # No busy-waiting between runs: on 2 cores a spinning pool steals the CPU the HTTP
        # server and the other services need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path = path

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the graph; returns torch tensors so callers need not care which backend ran."""
        feeds = {
            "input_ids": input_ids.numpy().astype(np.int64),
            "attention_mask": attention_mask.numpy().astype(np.int64),
        }
        outs = self.session.run(list(OUTPUTS), feeds)
        return {k: torch.from_numpy(v) for k, v in zip(OUTPUTS, outs, strict=True)}
