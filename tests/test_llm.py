"""LLM labels against a fake OpenAI-compatible endpoint on 127.0.0.1 (no network)."""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fakes_run import make_run

from textcluster.describe.clusters import describe
from textcluster.describe.llm import (
    LLMError,
    LLMSettings,
    OpenAIChatClient,
    build_messages,
    chat_url,
    label_clusters,
    parse_reply,
)
from textcluster.errors import ConfigError, TextclusterError
from textcluster.store import Workspace


class FakeLLM:
    """Replies from a queue: each item is ("json", content) | ("raw", bytes) | ("status", code) | ("sleep", s)."""

    def __init__(self):
        self.replies: list[tuple[str, object]] = []
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, **body})
                fake.headers.append(dict(self.headers))
                kind, val = fake.replies.pop(0) if fake.replies else ("json", '{"topics": ["default"]}')
                if kind == "sleep":
                    time.sleep(val)
                    kind, val = "json", '{"topics": ["late"]}'
                if kind == "truncate":  # promise more bytes than are sent, then hang up
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b'{"choices": [')
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if kind == "status":
                    self.send_response(val)
                    self.end_headers()
                    self.wfile.write(b"boom")
                    return
                data = val if kind == "raw" else json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": val}}]}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                # The client gave up first (a deadline or size cap under test): that is the point
                # of those tests, not a server error worth a traceback in the test log.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    f = FakeLLM()
    yield f
    f.close()


def _settings(fake, **kw):
    return LLMSettings(base_url=fake.url, model="tiny", api_key="sk-test", timeout=2.0, **kw).validate()


def test_topics_mode_round_trip(fake):
    fake.replies = [("json", '{"topics": ["Football matches", "Team sports"]}')]
    out = label_clusters({0: ["goal scored", "referee"]}, _settings(fake), keywords={0: ["goal"]})
    assert out[0].ok and out[0].topics == ["Football matches", "Team sports"]
    req = fake.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["model"] == "tiny"
    assert "goal scored" in req["messages"][1]["content"] and "Distinctive keywords: goal" in req["messages"][1]["content"]
    assert fake.headers[0]["Authorization"] == "Bearer sk-test"


def test_single_mode_topic_and_score(fake):
    fake.replies = [("json", 'Sure! ```json\n{"topic": "Baking", "score": 4}\n```')]
    out = label_clusters({3: ["bake the dough"]}, _settings(fake, mode="single"))
    assert out[3].ok and out[3].topic == "Baking" and out[3].score == 4
    assert "educational value" in fake.requests[0]["messages"][1]["content"]


@pytest.mark.parametrize(
    "mode, reply, match",
    [
        ("topics", ("json", "I think it is about football."), "no JSON object"),
        ("topics", ("json", '{"topics": "x"'), "no JSON object|not valid JSON"),
        ("topics", ("json", '{"topics": [1, 2]}'), "list of strings"),
        ("single", ("json", '{"topic": "Baking", "score": 9}'), "score"),
        ("single", ("json", '{"score": 3}'), "topic"),
        ("topics", ("json", "[1, 2]"), "JSON object"),
        ("topics", ("raw", b"not json at all"), "no chat completion"),
        ("topics", ("raw", b'{"choices": []}'), "no chat completion"),
        ("topics", ("status", 500), "HTTP 500"),
        ("single", ("status", 401), "HTTP 401"),
        ("topics", ("truncate", None), "IncompleteRead|failed"),
    ],
)
def test_malformed_replies_are_recorded_not_raised(fake, mode, reply, match):
    fake.replies = [reply, ("json", '{"topics": ["fine"]}' if mode == "topics" else '{"topic": "ok", "score": 1}')]
    out = label_clusters({0: ["a"], 1: ["b"]}, _settings(fake, mode=mode))
    assert not out[0].ok and out[0].error
    import re

    assert re.search(match, out[0].error), out[0].error
    assert out[1].ok  # the next cluster still gets its label


def test_timeout_is_a_typed_error_and_a_recorded_failure(fake):
    fake.replies = [("sleep", 2.0)]
    client = OpenAIChatClient(fake.url, "tiny", timeout=0.3)
    t0 = time.perf_counter()
    with pytest.raises(LLMError, match="timed out after 0.3 s"):
        client.complete([{"role": "user", "content": "hi"}])
    assert time.perf_counter() - t0 < 1.5
    assert issubclass(LLMError, TextclusterError)
    fake.replies = [("sleep", 2.0)]
    out = label_clusters({0: ["x"]}, LLMSettings(base_url=fake.url, model="m", timeout=0.3))
    assert not out[0].ok and "timed out" in out[0].error


def test_unreachable_endpoint_is_recorded():
    out = label_clusters({0: ["x"]}, LLMSettings(base_url="http://127.0.0.1:9", model="m", timeout=1))
    assert not out[0].ok and "cannot reach" in out[0].error


def test_parse_reply_rules():
    assert parse_reply('{"topics": ["a", " b ", "", "c", "d"]}', "topics", 3) == (["a", "b", "c"], None, None)
    assert parse_reply('{"topic": "T", "score": 5.0}', "single") == (["T"], "T", 5)
    with pytest.raises(LLMError, match="'topics' is empty"):
        parse_reply('{"topics": []}', "topics")
    with pytest.raises(LLMError, match="score"):
        parse_reply('{"topic": "T", "score": true}', "single")


def test_prompt_cuts_long_examples():
    s = LLMSettings(base_url="http://x", model="m", max_examples=2, max_chars=10)
    msg = build_messages(["a" * 50, "b", "c"], s)[1]["content"]
    assert "a" * 10 + "..." in msg and "2. b" in msg and "c" not in msg.split("\n")[3:4]


def test_settings_from_env_and_validation(monkeypatch):
    monkeypatch.setenv("TEXTCLUSTER_LLM_BASE_URL", "http://h:1/v1")
    monkeypatch.setenv("TEXTCLUSTER_LLM_MODEL", "envmodel")
    monkeypatch.setenv("TEXTCLUSTER_LLM_API_KEY", "sk-env")
    s = LLMSettings.from_env(model="argmodel")
    assert (s.base_url, s.model, s.api_key) == ("http://h:1/v1", "argmodel", "sk-env")
    assert "sk-env" not in json.dumps(s.to_manifest()) and "sk-env" not in repr(s)
    monkeypatch.delenv("TEXTCLUSTER_LLM_BASE_URL")
    with pytest.raises(ConfigError, match="base URL"):
        LLMSettings.from_env()
    with pytest.raises(ConfigError, match="mode='many'"):
        LLMSettings(base_url="http://x", model="m", mode="many").validate()
    assert chat_url("http://h/v1/") == "http://h/v1/chat/completions"
    assert chat_url("http://h") == "http://h/v1/chat/completions"


def test_describe_with_llm_labels(fake, tmp_path):
    ws = Workspace(tmp_path / "ws")
    fr = make_run(ws, sizes=(12, 8))
    fake.replies = [("json", '{"topics": ["Sport"]}'), ("json", "garbage")]
    d = describe(ws, fr.run_id, examples=2, llm=_settings(fake))
    by = d.by_cluster()
    assert by[0].llm["ok"] and by[0].llm["topics"] == ["Sport"]
    assert not by[1].llm["ok"] and "JSON" in by[1].llm["error"]
    assert "sk-test" not in (ws.path(d.description_id) / "manifest.json").read_text()
    assert d.description_id != describe(ws, fr.run_id, examples=2).description_id


@pytest.mark.model
def test_local_transformers_model_path(tmp_path):
    """A tiny random GPT-2 saved to a folder: it loads, generates, and its gibberish is recorded as malformed."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = ["[UNK]", "[SEP]", "{", "}", '"', "topics", ":", "[", "]", "sport", "code", "the", "a"]
    vocab = {w: i for i, w in enumerate(words)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", eos_token="[SEP]", pad_token="[SEP]")
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_embd=16, n_layer=1, n_head=2, n_positions=512)).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    s = LLMSettings(local_model=str(tmp_path), max_tokens=8, max_examples=1, max_chars=20).validate()
    out = label_clusters({0: ["the sport"]}, s)
    assert not out[0].ok and out[0].raw is not None and "JSON" in out[0].error
    bad = label_clusters({0: ["x"]}, LLMSettings(local_model=str(tmp_path / "missing")))
    assert not bad[0].ok and "cannot load local model" in bad[0].error
