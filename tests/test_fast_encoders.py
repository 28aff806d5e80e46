"""The int8 ONNX encoder and the distilled static ("fast preview") encoder, built on first use
into the workspace: on a tiny random sentence-transformers BERT built from a config (and, marked
slow, on the bundled MiniLM)."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from textcluster.config import EncoderConfig
from textcluster.embed.encoders import available_encoders, get_encoder
from textcluster.embed.encoders.builds import built_model
from textcluster.embed.engine import embedding_id, encode_texts
from textcluster.errors import EncoderError
from textcluster.store import Workspace

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "far", "away", "quick", "brown", "fox", "python",
         "code", "error", "list", "sort", "bank", "money", "loan"]
TEXTS = ["the cat sat on the mat", "a dog", "quick brown fox ran far away", "python code error",
         "bank money loan", "sort the list", "x"]


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny sentence-transformers folder: random BERT + mean Pooling + Normalize."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, BertTokenizerFast

    d = tmp_path_factory.mktemp("tiny") / "st-bert"
    d.mkdir()
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", *WORDS, *letters, *(f"##{c}" for c in letters)]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    tk = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tk.normalizer = normalizers.BertNormalizer(lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok = BertTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]", model_max_length=64)
    assert len(tok) == len(vocab)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(d)
    tok.save_pretrained(d)
    (d / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    (d / "1_Pooling").mkdir()
    (d / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}))
    (d / "2_Normalize").mkdir()
    (d / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64, "do_lower_case": False}))
    return d


def _st_vectors(path: Path, texts: list[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu", local_files_only=True).encode(texts, batch_size=4)


def test_registered_with_bundled_alias() -> None:
    names = [i.name for i in available_encoders()]
    assert "int8:<model>" in names and "m2v:<model>" in names
    assert any("fast preview" in i.help for i in available_encoders() if i.name.startswith("m2v"))


def test_int8_built_into_workspace_checked_and_close_to_float(tiny_st: Path, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    cfg = EncoderConfig(name=f"int8:{tiny_st}")
    got = encode_texts(TEXTS, cfg, ws=ws)
    built = list((ws.root / "models").glob("onnx-int8-*"))
    assert len(built) == 1, "the model is cached in the workspace, not next to the source"
    info = json.loads((built[0] / "build.json").read_text())
    # the float export was compared with torch before quantising
    assert info["export_max_abs_diff"] <= 1e-4
    assert info["pooling"] == "mean" and info["normalize"] is True
    assert (built[0] / "model-int8.onnx").is_file() and not (built[0] / "model-float.onnx").exists()
    assert not list(tiny_st.glob("*.onnx"))
    want = _st_vectors(tiny_st, TEXTS)
    cos = (got * want).sum(1)
    assert got.shape == want.shape
    assert cos.min() > 0.95, cos  # int8 weights: close to, not equal to, the float vectors
    # the second use reads the cached build (same vectors, build.json untouched)
    stamp = (built[0] / "build.json").stat().st_mtime_ns
    again = encode_texts(TEXTS, cfg, ws=ws)
    np.testing.assert_allclose(again, got, atol=1e-6)
    assert (built[0] / "build.json").stat().st_mtime_ns == stamp


def test_int8_recipe_keeps_gelu_fed_matmuls_and_embeddings_in_float(
    tiny_st: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx

    from textcluster.embed.encoders import onnx as onnx_enc

    enc = get_encoder(EncoderConfig(name=f"int8:{tiny_st}"))
    enc.set_workspace(Workspace(tmp_path / "ws"))
    folder = enc.model_dir()
    info = json.loads((folder / "build.json").read_text())
    assert info["recipe"] == onnx_enc.RECIPE and info["float_matmuls"] == 2  # one per layer
    graph = onnx.load(str(folder / "model-int8.onnx")).graph
    producer = {o: n for n in graph.node for o in n.output}
    ops = [n.op_type for n in graph.node]
    assert ops.count("MatMulInteger") == 2 * 5  # q, k, v, attention output, first feed-forward
    fed_by_gelu = [n for n in graph.node if n.input and producer.get(n.input[0]) is not None
                   and "Gelu" in producer[n.input[0]].op_type]
    assert fed_by_gelu and {n.op_type for n in fed_by_gelu} == {"MatMul"}
    assert "DequantizeLinear" not in ops  # the embedding tables were not quantised
    # the recipe is part of the key: a new recipe never reuses an old build or old vectors
    before = enc.fingerprint()
    monkeypatch.setattr(onnx_enc, "RECIPE", "onnx-int8-test")
    assert get_encoder(EncoderConfig(name=f"int8:{tiny_st}")).fingerprint() != before


def test_backend_is_part_of_the_embedding_id(tiny_st: Path) -> None:
    corpus = "cor-0123456789abcdef"
    ids = {embedding_id(corpus, EncoderConfig(name=f"{k}:{tiny_st}")) for k in ("st", "int8", "m2v", "static")}
    assert len(ids) == 4
    # the float default's id is unchanged by this work: it still hashes only the config and the model files
    from textcluster.embed.encoders.base import fingerprint_path
    from textcluster.embed.encoders.transformer import bundled_minilm_path
    from textcluster.store import make_id

    want = make_id("embedding", corpus, {"encoder": EncoderConfig().cache_key(),
                                         "model": fingerprint_path(bundled_minilm_path())})
    assert embedding_id(corpus, EncoderConfig()) == want


def test_missing_runtime_names_the_extra(tiny_st: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(EncoderError, match=r"onnxruntime.*textcluster\[fast\]"):
        encode_texts(["a"], EncoderConfig(name=f"int8:{tiny_st}"), ws=Workspace(tmp_path))


def test_cli_missing_runtime_one_error_line(tiny_st: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from textcluster.cli import main

    src = tmp_path / "in.txt"
    src.write_text("\n".join(TEXTS) + "\n")
    assert main(["ingest", str(src), "--json", "--workspace", str(tmp_path / "ws")]) == 0
    cid = json.loads(capsys.readouterr().out)["corpus_id"]
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    code = main(["embed", cid, "--encoder", f"int8:{tiny_st}", "--workspace", str(tmp_path / "ws")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: ") and "textcluster[fast]" in err[0]


def test_build_once_under_concurrency_and_nothing_left_by_a_failure(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    calls: list[int] = []

    def slow_build(out: Path) -> dict:
        calls.append(1)
        time.sleep(0.3)
        (out / "weights.bin").write_bytes(b"x" * 10)
        return {"ok": True}

    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(built_model(ws, "demo-1", slow_build, "demo")))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(results)) == 1
    assert (results[0] / "weights.bin").read_bytes() == b"x" * 10

    def broken(out: Path) -> dict:
        (out / "half.bin").write_bytes(b"x")
        raise RuntimeError("disk on fire")

    with pytest.raises(EncoderError, match="cannot build the broken thing: RuntimeError: disk on fire"):
        built_model(ws, "demo-2", broken, "the broken thing")
    assert not (ws.root / "models" / "demo-2").exists()
    assert not list((ws.root / "tmp").glob("model-demo-2*"))


def test_m2v_distilled_and_cached(tiny_st: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    ws = Workspace(tmp_path / "ws")
    cfg = EncoderConfig(name=f"m2v:{tiny_st}")
    enc = get_encoder(cfg)
    reports: list = []
    vecs = encode_texts(TEXTS, cfg, reports.append, ws=ws)
    builds = [r for r in reports if r.stage == "build"]
    assert builds and builds[-1].done == builds[-1].total > 0, "the first-use distillation reports progress"
    folder = next((ws.root / "models").glob("m2v-*"))
    table = np.load(folder / "vectors.npy")
    tok = AutoTokenizer.from_pretrained(str(tiny_st))
    assert table.shape == (len(tok), 32)  # PCA keeps min(256, hidden) dims
    specials = [tok.convert_tokens_to_ids(t) for t in ("[PAD]", "[CLS]", "[SEP]", "[unused0]")]
    assert not table[specials].any(), "special and [unusedN] tokens have no vector"
    # a one-token text is its token's (normalised) vector; a text is the mean of its tokens'
    cat = table[tok.convert_tokens_to_ids("cat")]
    one = encode_texts(["cat"], cfg, ws=ws)[0]
    np.testing.assert_allclose(one, cat / np.linalg.norm(cat), atol=1e-6)
    ids = tok("bank money loan", add_special_tokens=False)["input_ids"]
    mean = table[ids].mean(0)
    np.testing.assert_allclose(vecs[4], mean / np.linalg.norm(mean), atol=1e-6)
    assert enc.fingerprint() != get_encoder(EncoderConfig(name=f"static:{tiny_st}")).fingerprint()


@pytest.mark.slow
def test_bundled_minilm_int8_matches_float(tmp_path: Path) -> None:
    texts = ["How do I sort a list in Python?", "Apple releases a new phone", "ok",
             "Which stocks rose after the central bank cut interest rates?"] * 3
    ws = Workspace(tmp_path)
    got = encode_texts(texts, EncoderConfig(name="int8:minilm"), ws=ws)
    want = encode_texts(texts, EncoderConfig(name="minilm"), ws=ws)
    cos = (got * want).sum(1)
    # one-token texts ("ok") move most under int8 (0.948 measured); real sentences stay above 0.99
    assert cos.min() > 0.93 and cos.mean() > 0.98, cos


def test_app_falls_back_to_the_float_model_without_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    from textcluster.embed.encoders.registry import usable_encoder

    assert usable_encoder("int8:minilm") == ("int8:minilm", None)
    assert usable_encoder("m2v:minilm") == ("m2v:minilm", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    name, note = usable_encoder("int8:minilm")
    assert name == "minilm" and "textcluster[fast]" in note and "float model 'minilm'" in note
    assert usable_encoder("int8:org/model")[0] == "st:org/model"
