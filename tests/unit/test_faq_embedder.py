"""FAQ embedder: fine-tuning (batches without duplicate FAQs, a model that trains and loads), ONNX query path."""

import random
from pathlib import Path

import numpy as np

from nlu.faq.embedder import Embedder
from nlu.faq.finetune import finetune, kb_pairs, unique_batches


def test_batches_never_repeat_a_faq_and_keep_every_pair() -> None:
    pairs = [(f"q{i}", f"d{i % 5}", f"f{i % 5}") for i in range(23)]
    batches = unique_batches(pairs, 4, random.Random(0))
    assert all(len({p[2] for p in b}) == len(b) for b in batches)
    flat = [p for b in batches for p in b]
    assert len(set(flat)) == len(flat) >= 23 - 5  # no pair twice; only a lone last FAQ's pairs can be left out
    assert len(kb_pairs(Path("bot/kb/faq.yml"))) > 60


def test_finetune_moves_the_embedder_and_saves_it(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    pairs = [("how much is delivery", "Shipping costs: free over $50", "ship"),
             ("money back", "Refunds within 5 days", "refund"),
             ("pay by card", "We accept Visa and PayPal", "pay")]  # fmt: skip
    before = Embedder(tiny_encoder_dir, device="cpu").encode(["how much is delivery"])
    out = finetune(pairs, tmp_path / "ft", base=tiny_encoder_dir, epochs=2, batch_size=3, lr=1e-3, progress=False)
    after = Embedder(out, device="cpu")
    assert after.name != Embedder(tiny_encoder_dir, device="cpu").name
    assert not np.allclose(before, after.encode(["how much is delivery"]))


def test_onnx_query_path_matches_torch(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    torch_only = Embedder(tiny_encoder_dir, device="cpu")
    with_onnx = Embedder(tiny_encoder_dir, device="cpu", onnx_dir=tmp_path)
    assert with_onnx._onnx is not None and list(tmp_path.glob("*.onnx"))
    query = ["where is my refund for order 100234?"]
    np.testing.assert_allclose(with_onnx.encode(query), torch_only.encode(query), atol=1e-5)
    assert with_onnx.encode(query * 3).shape == (3, torch_only.dim)  # batches stay on torch
