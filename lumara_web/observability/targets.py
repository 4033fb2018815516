"""The performance table the product promises, as data: /metrics, the benchmark and the docs
all read it from here, so the three can never disagree about a target."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    key: str  # stable name for /metrics.json, Prometheus and benchmarks.json
    operation: str  # what a person reads
    promise: str  # the product's original promise, as written
    aim: str  # how far past it we aim, as written
    metric: str  # the PerfMonitor operation measured live ("" when only the bench measures it)
    statistic: str  # which Summary field the aim is about: median, p95, avg or last
    aim_value: float  # in the metric's unit
    promise_value: float | None  # None when the promise is not a fixed number
    unit: str

    def status(self, value: float | None) -> str:
        """'met' (within the aim), 'promise met' (within the promise only), 'missed', or
        'no data' before the first sample."""
        if value is None:
            return "no data"
        if value <= self.aim_value:
            return "met"
        if self.promise_value is not None and value <= self.promise_value:
            return "promise met"
        return "missed"


TARGETS: tuple[Target, ...] = (
    Target("first_setup", "First-time setup (empty data dir → models ready)", "< 30 s",
           "≤ 10 s", "startup.first_setup_ms", "last", 10_000, 30_000, "ms"),
    Target("start_http", "Later start: HTTP answering", "< 1 s", "≤ 1 s",
           "startup.http_ms", "last", 1_000, 1_000, "ms"),
    Target("start_ready", "Later start: models ready", "—", "≤ 3 s",
           "startup.ready_ms", "last", 3_000, None, "ms"),
    Target("embedding_single", "Embedding, warm, single", "< 100 ms", "≤ 10 ms p50",
           "embedding.computed_ms", "median", 10, 100, "ms"),
    Target("embedding_cached", "Embedding, cached", "< 0.1 × uncached", "≤ 0.05 ms",
           "embedding.cached_ms", "median", 0.05, None, "ms"),
    Target("chat_answer", "Chat, memory-grounded answer", "< 2 s average", "≤ 1.2 s",
           "chat.total_ms", "avg", 1_200, 2_000, "ms"),
    Target("chat_ttft", "Chat, time to first token", "—", "≤ 300 ms p50",
           "chat.ttft_ms", "median", 300, None, "ms"),
    Target("chat_ttft_long", "Chat, time to first token over a 24-turn conversation", "—",
           "≤ 250 ms p50, ≤ 400 ms p95", "", "p95", 400, None, "ms"),
    Target("search", "Similarity search, top-k (live collection)", "< 50 ms (1,000)",
           "≤ 0.5 ms p50 (1,000)", "search.ms", "median", 0.5, 50, "ms"),
    Target("hybrid_search", "Hybrid search, keywords + vectors (chat, search box)", "—",
           "≤ 5 ms p50 (10,000)", "search.hybrid_ms", "median", 5, None, "ms"),
    Target("search_100k", "Similarity search, 100,000 memories", "—",
           "≤ 10 ms p50, recall@10 ≥ 0.95", "", "median", 10, None, "ms"),
    Target("search_1m", "Similarity search, 1,000,000 memories", "—",
           "≤ 5 ms p50, recall@10 ≥ 0.95", "", "median", 5, None, "ms"),
    Target("rss_1m", "Memory: server RSS, both models, 1,000,000 memories", "< 500 MB",
           "≤ 500 MB", "", "last", 500, 500, "MB"),
    Target("start_1m_http", "Later start with 1,000,000 memories: HTTP answering", "< 1 s",
           "≤ 1 s", "", "last", 1_000, 1_000, "ms"),
    Target("start_1m_search", "Later start with 1,000,000 memories: search at full speed",
           "—", "≤ 2 s", "", "last", 2_000, None, "ms"),
    Target("rss", "Memory: server RSS, both models loaded", "< 500 MB", "≤ 400 MB",
           "process.rss_mb", "last", 400, 500, "MB"),
    Target("api_while_chatting", "No UI blocking: API p95 while chats stream", "—", "≤ 50 ms",
           "api.busy_request_ms", "p95", 50, None, "ms"),
)

# Operations measured live besides the targets' own (documented on /metrics):
#   embedding.batch_ms      one embed_many call that reached the model, whole call
#   embedding.load_ms       embedding model load       chat.load_ms   chat model load
#   chat.tokens_per_s       generation speed of one answer
#   api.request_ms          every /api request         page.load_ms   the browser's page load
# Counters are read from their owners when the report is built: the embedding service's
#   (memo_hits, cache_hits, computed, model_batches) and the chat engine's prompt cache
#   (prompts, restores, reused_tokens of prompt_tokens).
