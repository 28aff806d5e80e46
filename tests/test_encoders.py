"""Encoders: registry, typed errors, pooling modes on tiny models built from a config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from textcluster.config import EncoderConfig
from textcluster.embed.encoders import available_encoders, get_encoder, parse_name
from textcluster.embed.encoders.base import fingerprint_path, resolve_model_path
from textcluster.embed.engine import encode_texts
from textcluster.errors import ConfigError, EncoderError

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "far", "away", "a", "quick", "brown", "fox", "jumps", "over", "lazy", "river", "bank", "money", "loan", "credit", "card", "python", "code", "error", "list", "sort"]
TEXTS = [
    "the cat sat on the mat",
    "a dog",
    "quick brown fox jumps over the lazy dog and ran far away from the river bank",
    "python code error",
    "credit card loan money bank",
]


def _vocab() -> list[str]:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *letters, *(f"##{c}" for c in letters)]


def _bert_tokenizer(folder: Path):
    from transformers import BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(dict.fromkeys(_vocab())) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True, model_max_length=64)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny BERT, T5 and GPT-2 models (random weights, seeded) saved to folders."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        BertConfig,
        BertModel,
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        T5Config,
        T5Model,
    )

    root = tmp_path_factory.mktemp("tiny")
    out = {}
    torch.manual_seed(0)
    d = root / "bert"
    tok = _bert_tokenizer(d)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(d)
    tok.save_pretrained(d)
    out["bert"] = d

    d = root / "t5"
    tok = _bert_tokenizer(d)
    T5Model(T5Config(vocab_size=len(tok), d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2,
                     pad_token_id=0, decoder_start_token_id=0)).save_pretrained(d)
    tok.save_pretrained(d)
    out["t5"] = d

    d = root / "gpt2"
    d.mkdir()
    vocab = {w: i for i, w in enumerate(dict.fromkeys(_vocab()))}
    tk = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    gtok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", eos_token="[SEP]")
    GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_embd=32, n_layer=2, n_head=2, n_positions=64)).save_pretrained(d)
    gtok.save_pretrained(d)
    out["gpt2"] = d

    d = root / "llama"
    LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)
                     ).save_pretrained(d)
    gtok.save_pretrained(d)
    out["llama"] = d
    return out


def _enc(name: str, **kw) -> np.ndarray:
    return encode_texts(TEXTS, EncoderConfig(name=name, device="cpu", **kw))


def _reference(folder: Path, pooling: str, model_cls: str = "AutoModel") -> np.ndarray:
    """Each text alone (no padding at all), pooled by hand."""
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    model = getattr(transformers, model_cls).from_pretrained(str(folder)).eval()
    rows = []
    for t in TEXTS:
        enc = tok(t, return_tensors="pt")
        with torch.no_grad():
            h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state[0]
        rows.append({"mean": h.mean(0), "cls": h[0], "last-token": h[-1]}[pooling].numpy())
    x = np.stack(rows)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# -- registry and errors -------------------------------------------------------

def test_registry_lists_every_encoder_with_help():
    infos = {i.name: i for i in available_encoders()}
    assert list(infos)[0] == "minilm"
    assert set(infos) == {"minilm", "tfidf", "st:<model>", "hf:<model>", "static:<model>", "int8:<model>", "m2v:<model>"}
    assert infos["tfidf"].needs_model is False and infos["minilm"].needs_model is True
    assert infos["hf:<model>"].takes_model and not infos["minilm"].takes_model
    assert all(i.help for i in infos.values())


def test_parse_name():
    assert parse_name("st:org/model") == ("st", "org/model")
    assert parse_name("minilm") == ("minilm", "")


def test_unknown_name_lists_known_ones():
    with pytest.raises(EncoderError, match=r"unknown encoder 'bert-large'; known: minilm, tfidf"):
        get_encoder(EncoderConfig(name="bert-large"))


def test_model_part_missing_or_unexpected():
    with pytest.raises(EncoderError, match=r"encoder 'hf:' needs a model"):
        parse_name("hf:")
    with pytest.raises(EncoderError, match=r"encoder 'tfidf' takes no model, got 'tfidf:x'"):
        parse_name("tfidf:x")


def test_missing_local_path_is_a_typed_error():
    with pytest.raises(EncoderError, match=r"model folder '/nonexistent/models/x' does not exist"):
        get_encoder(EncoderConfig(name="hf:/nonexistent/models/x")).fingerprint()


def test_hub_name_offline_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(EncoderError, match=r"'nobody/no-such-model' .*HF_HUB_OFFLINE is set"):
        resolve_model_path("nobody/no-such-model")


def test_unloadable_folder_names_the_path(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(EncoderError, match=r"cannot load Hugging Face model from '.*'"):
        _enc(f"hf:{tmp_path}")


def test_pooling_only_for_hf():
    with pytest.raises(ConfigError, match=r"pooling='cls' applies to hf:<model> encoders only, got encoder='tfidf'"):
        encode_texts(["a"], EncoderConfig(name="tfidf", pooling="cls"))


def test_fingerprint_follows_bytes_not_location(tiny, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny["bert"], copy)
    assert fingerprint_path(copy) == fingerprint_path(tiny["bert"])
    cfg = json.loads((copy / "config.json").read_text())
    cfg["layer_norm_eps"] = 1e-6
    (copy / "config.json").write_text(json.dumps(cfg))
    assert fingerprint_path(copy) != fingerprint_path(tiny["bert"])


# -- pooling on tiny models -------------------------------------------------------

@pytest.mark.model
@pytest.mark.parametrize("pooling", ["mean", "cls", "last-token"])
def test_bert_pooling_matches_unpadded_reference(tiny, pooling):
    got = _enc(f"hf:{tiny['bert']}", pooling=pooling)
    np.testing.assert_allclose(got, _reference(tiny["bert"], pooling), atol=2e-5)


@pytest.mark.model
def test_pooling_modes_differ(tiny):
    mean, cls = _enc(f"hf:{tiny['bert']}", pooling="mean"), _enc(f"hf:{tiny['bert']}", pooling="cls")
    assert np.abs(mean - cls).max() > 1e-2


@pytest.mark.model
@pytest.mark.parametrize("pooling", ["mean", "cls", "last-token"])
def test_t5_loads_the_encoder_only(tiny, pooling):
    enc = get_encoder(EncoderConfig(name=f"hf:{tiny['t5']}", pooling=pooling))
    enc.load("cpu")
    assert type(enc.model_).__name__ == "T5EncoderModel"
    got = _enc(f"hf:{tiny['t5']}", pooling=pooling)
    np.testing.assert_allclose(got, _reference(tiny["t5"], pooling, "T5EncoderModel"), atol=2e-5)


@pytest.mark.model
def test_decoder_defaults_to_last_token_with_right_padding(tiny):
    enc = get_encoder(EncoderConfig(name=f"hf:{tiny['gpt2']}"))
    enc.load("cpu")
    assert enc.pooling_ == "last-token" and enc.tokenizer_.pad_token == "[SEP]"
    got = _enc(f"hf:{tiny['gpt2']}")  # one padded batch
    np.testing.assert_allclose(got, _reference(tiny["gpt2"], "last-token"), atol=2e-5)


@pytest.mark.model
def test_llama_last_token_is_batch_independent(tiny):
    got = _enc(f"hf:{tiny['llama']}", pooling="last-token")
    np.testing.assert_allclose(got, _reference(tiny["llama"], "last-token"), atol=2e-5)


@pytest.mark.model
def test_max_length_truncates(tiny):
    short = _enc(f"hf:{tiny['bert']}", max_length=4)
    full = _enc(f"hf:{tiny['bert']}")
    assert np.abs(short[2] - full[2]).max() > 1e-3  # the long text was cut
    np.testing.assert_allclose(short[1], full[1], atol=2e-5)  # "a dog" is 4 tokens with [CLS]/[SEP]


@pytest.mark.model
def test_instruction_is_a_prefix(tiny):
    with_instr = _enc(f"hf:{tiny['bert']}", instruction="python code ")
    manual = encode_texts(["python code " + t for t in TEXTS], EncoderConfig(name=f"hf:{tiny['bert']}"))
    np.testing.assert_allclose(with_instr, manual, atol=1e-6)


@pytest.mark.model
def test_st_on_a_plain_folder_equals_hf_mean(tiny):
    np.testing.assert_allclose(_enc(f"st:{tiny['bert']}"), _enc(f"hf:{tiny['bert']}", pooling="mean"), atol=2e-5)


@pytest.mark.model
def test_static_is_the_mean_of_token_vectors(tiny):
    from safetensors.numpy import load_file

    weights = load_file(str(tiny["bert"] / "model.safetensors"))
    matrix = next(v for k, v in weights.items() if k.endswith("word_embeddings.weight"))
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(tiny["bert"]))
    expected = np.stack([matrix[tok(t, add_special_tokens=False)["input_ids"]].mean(0) for t in TEXTS])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(_enc(f"static:{tiny['bert']}"), expected, atol=1e-5)


def test_dims_cuts_neural_vectors(tiny):
    full = _enc(f"static:{tiny['bert']}", normalize=False)
    cut = _enc(f"static:{tiny['bert']}", normalize=False, dims=8)
    np.testing.assert_allclose(cut, full[:, :8], atol=1e-6)
    with pytest.raises(ConfigError, match=r"dims=99 should be <= the encoder's 32 dimensions"):
        _enc(f"static:{tiny['bert']}", dims=99)


def test_tfidf_needs_its_fitted_state():
    with pytest.raises(ConfigError, match=r"encoder 'tfidf' is fitted on a corpus: pass ws= and embedding_id="):
        _enc("tfidf")


def test_tfidf_state_round_trip_is_exact(tmp_path):
    from textcluster.embed.encoders.tfidf import TfidfEncoder

    corpus = [f"{w} {v} {u}" for w in WORDS for v in WORDS[:6] for u in ("x", "y")]
    a = TfidfEncoder(EncoderConfig(name="tfidf", dims=5)).fit(corpus)
    a.save_state(tmp_path)
    assert not list(tmp_path.rglob("*.pkl"))
    b = TfidfEncoder(EncoderConfig(name="tfidf", dims=5)).load_state(tmp_path)
    np.testing.assert_array_equal(a.encode_batch(TEXTS), b.encode_batch(TEXTS))
    again = TfidfEncoder(EncoderConfig(name="tfidf", dims=5)).fit(corpus)
    np.testing.assert_array_equal(a.encode_batch(TEXTS), again.encode_batch(TEXTS))  # deterministic
    assert a.encode_batch(TEXTS).shape == (len(TEXTS), 5)


@pytest.mark.model
def test_loaded_model_is_kept_per_process(tiny, monkeypatch):
    import transformers

    from textcluster.embed.encoders import clear_model_cache

    clear_model_cache()
    calls = []
    real = transformers.AutoModel.from_pretrained

    def counting(*a, **k):
        calls.append(a[0])
        return real(*a, **k)

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", counting)
    first = _enc(f"hf:{tiny['bert']}", pooling="mean")
    second = _enc(f"hf:{tiny['bert']}", pooling="cls")  # same model, other settings
    assert len(calls) == 1 and np.abs(first - second).max() > 0


@pytest.mark.gpu
def test_gpu_half_precision_agrees_with_cpu(tiny):
    from textcluster.embed.devices import cuda_available

    if not cuda_available():
        pytest.skip("no CUDA device")
    cpu = _enc(f"hf:{tiny['bert']}")
    gpu = encode_texts(TEXTS, EncoderConfig(name=f"hf:{tiny['bert']}", device="cuda"))
    assert float((cpu * gpu).sum(1).min()) > 0.99


def _recipe1(texts, dims, max_features, seed=0):
    """Recipe 1 of tfidf (before bounded memory): whole-corpus TfidfVectorizer + float64 SVD on every row."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(sublinear_tf=True, stop_words="english", min_df=2, max_features=max_features)
    x = vec.fit_transform(texts)
    v = TruncatedSVD(n_components=dims, algorithm="randomized", n_iter=5, random_state=seed).fit_transform(x)
    return vec, v


def _topic_texts(n=1500, topics=6, seed=0):
    rng = np.random.default_rng(seed)
    noise = [f"w{i}" for i in range(2000)]
    zipf = 1.0 / np.arange(1, len(noise) + 1) ** 1.1
    zipf /= zipf.sum()
    own = [[f"t{t}x{i}" for i in range(40)] for t in range(topics)]
    texts = []
    for i in range(n):
        t = i % topics
        words = list(rng.choice(own[t], 4)) + list(rng.choice(noise, int(rng.integers(4, 12)), p=zipf))
        texts.append(" ".join(words))
    return texts


def test_tfidf_bounded_recipe_agrees_with_recipe1(monkeypatch):
    """The tolerance of docs/encoders.md: streamed counts and an SVD fitted on a sample give the
    same clusters as recipe 1 (k-means ARI >= 0.95) and 10-nearest neighbours that agree with recipe 1's at least 0.5 times as
    well as recipe 1's own agree across SVD seeds."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from textcluster.embed.encoders import tfidf

    monkeypatch.setattr(tfidf, "FIT_CHUNK_ROWS", 250)  # counts merged over 6 chunks
    monkeypatch.setattr(tfidf, "SVD_FIT_ROWS", 500)  # SVD on a third of the rows
    monkeypatch.setattr(tfidf, "MAX_FEATURES", 600)  # the cap applies
    texts = _topic_texts()
    vec, old = _recipe1(texts, 32, 600)
    enc = tfidf.TfidfEncoder(EncoderConfig(name="tfidf", dims=32)).fit(texts)
    shared = set(enc.vocabulary_) & set(vec.vocabulary_)
    assert len(shared) >= 0.99 * len(vec.vocabulary_)  # only ties at the cap may differ
    w = sorted(shared)
    np.testing.assert_allclose(enc.idf_[[enc.vocabulary_[t] for t in w]], vec.idf_[[vec.vocabulary_[t] for t in w]])
    new = np.concatenate([enc.encode_batch(texts[a : a + 300]) for a in range(0, len(texts), 300)])
    assert new.dtype == np.float32 and new.shape == old.shape
    km = {name: KMeans(6, n_init=10, random_state=0).fit_predict(v) for name, v in (("old", old), ("new", new))}
    assert adjusted_rand_score(km["old"], km["new"]) >= 0.95
    k = 10

    def knn(v):
        v = v / np.linalg.norm(v, axis=1, keepdims=True).clip(1e-12)
        s = v @ v.T
        np.fill_diagonal(s, -np.inf)
        return np.argsort(-s, axis=1)[:, :k]

    def overlap(a, b):
        return np.mean([len(set(a[i]) & set(b[i])) / k for i in range(len(texts))])

    # neighbours within a topic are near-ties: recipe 1 with another SVD seed is the yardstick
    base = overlap(knn(old), knn(_recipe1(texts, 32, 600, seed=1)[1]))
    assert overlap(knn(old), knn(new)) >= 0.5 * base, (overlap(knn(old), knn(new)), base)
