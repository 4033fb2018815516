"""LlamaEngine on real llama-cpp-python: what a user sees when the model file is wrong."""

import subprocess
import sys
import time

import pytest

from lumara_web import create_app
from lumara_web.inference.engine import GenerationRequest, LlamaEngine, machine_cores
from lumara_web.inference.free_cores import MEASURE_EVERY_SECONDS

from .fakes import FakeEmbedder


def test_a_corrupt_model_file_is_reported_with_its_path_and_the_fix(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    engine = LlamaEngine(model_path=broken)
    engine.start()
    assert engine.model.settle(60)
    status = engine.status()
    assert status["state"] == "error"
    assert str(broken) in status["error"]
    assert "--model" in status["error"]


def test_a_missing_model_file_fails_requests_with_the_reason(tmp_path):
    app = create_app({"data_dir": str(tmp_path / "data"), "embedder": FakeEmbedder(),
                      "model": str(tmp_path / "nowhere.gguf")})
    engine = app.extensions["lumara"].engine
    assert engine.model.settle(60)
    health = app.test_client().get("/health").get_json()
    assert health["status"] == "error"
    assert health["chat_model"]["state"] == "error"
    assert "nowhere.gguf" in health["chat_model"]["error"]
    try:
        engine.submit(GenerationRequest([{"role": "user", "content": "hi"}], max_tokens=4))
    except Exception as error:
        assert getattr(error, "code", None) == "model_failed"
        assert "nowhere.gguf" in error.message
    else:
        raise AssertionError("a request to a model that failed to load must fail")


def test_the_bundled_model_loads_with_every_core_and_a_4k_context(real_engine):
    llm = real_engine.model.wait(60)
    # The library's default is half the cores for both pools.
    assert llm.context_params.n_threads == machine_cores()
    assert llm.context_params.n_threads_batch == machine_cores()
    assert llm.n_ctx() >= 4096
    assert "im_start" in llm.metadata["tokenizer.chat_template"]  # the template from the file


def test_after_a_read_ahead_the_next_prompt_reads_only_its_own_turn(real_engine):
    """On the real model: the conversation is read ahead (even with another prompt run in
    between), and the next answer prompt then decodes only the tokens after it."""
    from lumara_web.chat import prompts

    history = [{"role": "user", "content": prompts.question_turn(
                   "Where does my sister live?", ["My sister Ana lives in Porto."])},
               {"role": "assistant", "content": "Your sister Ana lives in Porto."}]
    read = real_engine.read_ahead(prompts.conversation_so_far(history),
                                  pinned=prompts.PINNED_MESSAGES)
    assert read is not None
    real_engine.submit(GenerationRequest([{"role": "user", "content": "Unrelated prompt."}],
                                         max_tokens=1, purpose="extract")).text()
    assert real_engine.wait_idle(60)
    before = real_engine.status()["prompt_cache"]
    asked, memories = "When is my dentist appointment?", ["My dentist appointment is 14 March."]
    real_engine.submit(GenerationRequest(prompts.answer_messages(history, asked, memories),
                                         max_tokens=1, pinned=prompts.PINNED_MESSAGES)).text()
    after = real_engine.status()["prompt_cache"]
    llm = real_engine.model.value
    own_turn = len(llm.tokenize(prompts.question_turn(asked, memories).encode(),
                                add_bos=False, special=False))
    decoded = (after["prompt_tokens"] - before["prompt_tokens"]) - (
        after["reused_tokens"] - before["reused_tokens"])
    # Its own turn plus the chat template's few markers; not the prefix read ahead.
    assert own_turn <= decoded <= own_turn + 12


def decoding_threads_after(engine, seconds: float) -> int:
    """Generate for `seconds` (several measuring windows), then read the context's count."""
    import llama_cpp

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        engine.submit(GenerationRequest([{"role": "user", "content": "Count to fifty."}],
                                        max_tokens=24, purpose="extract")).text()
    return llama_cpp.llama_n_threads(engine.model.value._ctx.ctx)


@pytest.mark.skipif(machine_cores() < 2, reason="needs a core to give away")
def test_a_busy_core_elsewhere_is_left_to_its_process(real_engine):
    """On the real model: beside a spinning process the chat model decodes on one thread
    fewer (two threads beside it spin at llama.cpp's barriers), and takes it back after."""
    before = decoding_threads_after(real_engine, 2 * MEASURE_EVERY_SECONDS)
    burner = subprocess.Popen([sys.executable, "-c", "while 1: pass"])
    try:
        assert decoding_threads_after(real_engine, 3 * MEASURE_EVERY_SECONDS) < \
            machine_cores()
    finally:
        burner.kill()
        burner.wait()
    assert decoding_threads_after(real_engine, 3 * MEASURE_EVERY_SECONDS) == before
