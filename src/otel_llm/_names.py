"""Every span, attribute and metric name otel-llm emits, in one place.

Only ``recorder.py`` uses these to emit telemetry; the dashboard and alert generators in
``collector/`` import them (and the Prometheus series names below) instead of retyping them.
Names follow the OpenTelemetry GenAI semantic conventions as released in core v1.41
(see the README's "Metrics and spans" section); names under ``otel_llm.`` are our own where
the conventions have none yet.
"""

from __future__ import annotations

SCHEMA_URL = "https://opentelemetry.io/schemas/1.41.0"
SCOPE_NAME = "otel_llm"

# --- attributes (conventions) ---
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TIME_TO_FIRST_CHUNK_ATTR = "gen_ai.response.time_to_first_chunk"
REQUEST_STREAM = "gen_ai.request.stream"
REQUEST_STREAM_CURSOR = "gen_ai.request.stream_cursor"  # fetch_response: the event a streamed fetch resumes after
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
REQUEST_TOP_P = "gen_ai.request.top_p"
REQUEST_TOP_K = "gen_ai.request.top_k"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
REQUEST_SEED = "gen_ai.request.seed"
REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
REQUEST_ENCODING_FORMATS = "gen_ai.request.encoding_formats"
OUTPUT_TYPE = "gen_ai.output.type"
EMBEDDINGS_DIMENSION = "gen_ai.embeddings.dimension.count"
CONVERSATION_ID = "gen_ai.conversation.id"
CONVERSATION_COMPACTED = "gen_ai.conversation.compacted"
USAGE_INPUT = "gen_ai.usage.input_tokens"
USAGE_OUTPUT = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ = "gen_ai.usage.cache_read.input_tokens"
# tokens written to the provider's cache: the GenAI repo's rename of cache_creation, as util-genai 1.3b0 emits it
USAGE_CACHE_WRITE = "gen_ai.usage.cache_write.input_tokens"
USAGE_REASONING = "gen_ai.usage.reasoning.output_tokens"
# Audio tokens (OpenAI's prompt/completion_tokens_details.audio_tokens): the conventions have no name yet; named
# after their cache_read / reasoning ones. Parts of gen_ai.usage.input_tokens / output_tokens.
USAGE_AUDIO_INPUT = "gen_ai.usage.audio.input_tokens"
USAGE_AUDIO_OUTPUT = "gen_ai.usage.audio.output_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"
RESPONSE_STATUS = "gen_ai.response.status"  # fetch_response (the fetched response's status)
OPENAI_API_TYPE = "openai.api.type"
OPENAI_REQUEST_SERVICE_TIER = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"
OPENAI_SYSTEM_FINGERPRINT = "openai.response.system_fingerprint"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
HTTP_STATUS = "http.response.status_code"
HTTP_RESEND_COUNT = "http.request.resend_count"
URL_FULL = "url.full"

# Cost: open proposal semantic-conventions-genai PR #443 (not merged; provisional).
COST_AMOUNT = "gen_ai.usage.cost.amount"
COST_CURRENCY = "gen_ai.usage.cost.currency"
COST_SOURCE = "gen_ai.usage.cost.source"  # "provider" | "local", as the proposal enumerates

# --- our own attributes ---
COST_ORIGIN = "otel_llm.cost.origin"  # "relay" | "user_table" | "genai_prices"
COST_PRICE_VERSION = "otel_llm.cost.price_version"
COST_PRICED_MODEL = "otel_llm.cost.model"
# The cost split by what it paid for (only non-zero parts; they sum to gen_ai.usage.cost.amount) and,
# when a multiplier or a relay-reported cost applied, the cost at list price beside it.
COST_PART_TYPES = ("input", "output", "cache_read", "cache_write", "reasoning", "request")  # token.type values
COST_PART_ATTRIBUTES = tuple(f"otel_llm.cost.{t}" for t in COST_PART_TYPES)  # otel_llm.cost.input, ...
COST_LIST_PRICE = "otel_llm.cost.list_price"
# The provider reported a token count outside any real range (negative, fractional, not a number, above
# MAX_TOKENS): no token counts, cost or spend for the call, and the unpriced reason INVALID_USAGE.
USAGE_INVALID = "otel_llm.usage.invalid"
STREAM_OUTCOME = "otel_llm.stream.outcome"  # completed | closed_early | abandoned | failed
INSTRUMENTED_LAYER = "otel_llm.layer"  # sdk | http
RATE_LIMIT_PREFIX = "gen_ai.rate_limit."  # + "remaining_requests", "limit_tokens", "reset_requests", ...
RETRY_AFTER = "gen_ai.rate_limit.retry_after"
# Ollama's own server timings of a call (its final answer's ``*_duration`` fields, sent in nanoseconds), as
# span attributes in seconds (float), the unit of every duration the conventions define.
OLLAMA_TOTAL_DURATION = "otel_llm.ollama.total_duration"  # the whole request on the server
OLLAMA_LOAD_DURATION = "otel_llm.ollama.load_duration"  # loading the model (0 when it was loaded already)
OLLAMA_PROMPT_EVAL_DURATION = "otel_llm.ollama.prompt_eval_duration"  # reading the prompt
OLLAMA_EVAL_DURATION = "otel_llm.ollama.eval_duration"  # generating the answer

# Metric-only attribute keys.
TOKEN_TYPE = "gen_ai.token.type"
RATE_LIMIT_RESOURCE = "gen_ai.rate_limit.resource"  # requests | tokens | input_tokens | output_tokens
UNPRICED_REASON = "otel_llm.unpriced.reason"  # unknown_model | no_usage | invalid_usage
UNKNOWN_MODEL, NO_USAGE, INVALID_USAGE = "unknown_model", "no_usage", "invalid_usage"  # its values
# gen_ai.token.type values of the token-detail counter (TOKEN_DETAIL)
DETAIL_TOKEN_TYPES = ("cache_read", "cache_write", "reasoning", "audio_input", "audio_output")

# --- events (log records through the OpenTelemetry Logs API) ---
EVENT_INFERENCE_DETAILS = "gen_ai.client.inference.operation.details"

# --- metrics ---
DURATION = "gen_ai.client.operation.duration"
TOKEN_USAGE = "gen_ai.client.token.usage"
TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
TIME_PER_OUTPUT_CHUNK = "gen_ai.client.operation.time_per_output_chunk"
COST = "gen_ai.client.operation.cost"
TOKEN_DETAIL = "otel_llm.client.token.usage.detail"
UNPRICED = "otel_llm.client.operation.unpriced"
TOKEN_COST = "otel_llm.client.token.cost"  # (observable) Counter, USD, by gen_ai.token.type (COST_PART_TYPES)
# (Observable) counters, USD, for calls billed at other than list price (a relay-reported cost or a price multiplier):
# their cost at list price, and what they were billed. Savings = list price - billed.
LIST_COST = "otel_llm.client.operation.cost.list_price"
RELAY_BILLED_COST = "otel_llm.client.operation.cost.relay_billed"
# (Observable) UpDownCounter of calls in progress, after HTTP's http.client.active_requests (no GenAI one yet)
ACTIVE_OPERATIONS = "otel_llm.client.active_operations"
RATE_LIMIT_REMAINING = "gen_ai.client.rate_limit.remaining"
RATE_LIMIT_LIMIT = "gen_ai.client.rate_limit.limit"

DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
COST_BUCKETS = (0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)

# Metric attribute allowlist: the only keys that ever become metric labels (plus the per-metric
# ones above). Nothing per request.
METRIC_ATTRIBUTES = (OPERATION, PROVIDER, REQUEST_MODEL, RESPONSE_MODEL, SERVER_ADDRESS, SERVER_PORT, ERROR_TYPE)
# Calls in flight carry only what is known when a call starts (the same set on +1 and -1).
ACTIVE_ATTRIBUTES = (OPERATION, PROVIDER, REQUEST_MODEL, SERVER_ADDRESS, SERVER_PORT)

# --- The GenAI repo's token counters (option ``token_metrics``: histogram | counters | both) ---
# Counters of tokens by gen_ai.token.modality, replacing the gen_ai.client.token.usage histogram on the
# conventions' main branch; recorded for failed calls too (0 with modality "unknown" when there is no usage).
INFERENCE_USAGE_INPUT = "gen_ai.client.inference.usage.input_tokens"
INFERENCE_USAGE_OUTPUT = "gen_ai.client.inference.usage.output_tokens"
INFERENCE_USAGE_CACHE_READ = "gen_ai.client.inference.usage.cache_read.input_tokens"
INFERENCE_USAGE_CACHE_WRITE = "gen_ai.client.inference.usage.cache_write.input_tokens"
INFERENCE_USAGE_REASONING = "gen_ai.client.inference.usage.reasoning.output_tokens"
TOKEN_MODALITY = "gen_ai.token.modality"  # text | image | audio | unknown
TOKEN_METRICS_FORMS = ("histogram", "counters", "both")

# --- Attribution scopes (otel_llm.scope(...), W3C baggage) ---
# A scope's keys land on spans and events under these names: the conventions' names where they exist,
# otel_llm.scope.<key> for every other key. Only the keys of the option ``scope_labels`` (default tenant,
# feature) become metric labels, each bounded to ``max_scope_values`` distinct values (then "_OTHER").
SCOPE_PREFIX = "otel_llm.scope."
SCOPE_TENANT = "otel_llm.scope.tenant"
SCOPE_FEATURE = "otel_llm.scope.feature"
USER_ID = "user.id"
SCOPE_CONVENTION_NAMES = {"user": USER_ID, "conversation": CONVERSATION_ID}
# Inclusive totals of the LLM calls made inside a scope, set on the span that was current when it was entered.
ROLLUP_CALLS = "otel_llm.rollup.calls"
ROLLUP_UNPRICED_CALLS = "otel_llm.rollup.unpriced_calls"
ROLLUP_ERRORS = "otel_llm.rollup.errors"
ROLLUP_INPUT_TOKENS = "otel_llm.rollup.input_tokens"
ROLLUP_OUTPUT_TOKENS = "otel_llm.rollup.output_tokens"
ROLLUP_COST = "otel_llm.rollup.cost_usd"

# --- Prometheus series, as the OpenTelemetry Prometheus exporter (and the Collector's
# prometheus exporter with default settings) names them. ---
PROM_DURATION = "gen_ai_client_operation_duration_seconds"
PROM_TOKEN_USAGE = "gen_ai_client_token_usage"
PROM_TTFC = "gen_ai_client_operation_time_to_first_chunk_seconds"
PROM_TPOC = "gen_ai_client_operation_time_per_output_chunk_seconds"
PROM_COST = "gen_ai_client_operation_cost_USD"
PROM_TOKEN_DETAIL = "otel_llm_client_token_usage_detail_total"
PROM_UNPRICED = "otel_llm_client_operation_unpriced_total"
PROM_TOKEN_COST = "otel_llm_client_token_cost_USD_total"
PROM_LIST_COST = "otel_llm_client_operation_cost_list_price_USD_total"
PROM_RELAY_BILLED_COST = "otel_llm_client_operation_cost_relay_billed_USD_total"
PROM_ACTIVE_OPERATIONS = "otel_llm_client_active_operations"
PROM_RATE_LIMIT_REMAINING = "gen_ai_client_rate_limit_remaining"
PROM_RATE_LIMIT_LIMIT = "gen_ai_client_rate_limit_limit"
PROM_INFERENCE_USAGE_INPUT = "gen_ai_client_inference_usage_input_tokens_total"
PROM_INFERENCE_USAGE_OUTPUT = "gen_ai_client_inference_usage_output_tokens_total"
PROM_INFERENCE_USAGE_CACHE_READ = "gen_ai_client_inference_usage_cache_read_input_tokens_total"
PROM_INFERENCE_USAGE_CACHE_WRITE = "gen_ai_client_inference_usage_cache_write_input_tokens_total"
PROM_INFERENCE_USAGE_REASONING = "gen_ai_client_inference_usage_reasoning_output_tokens_total"
PROM_SERIES = (
    f"{PROM_DURATION}_bucket",
    f"{PROM_TOKEN_USAGE}_sum",
    f"{PROM_TTFC}_count",
    f"{PROM_TPOC}_count",
    f"{PROM_COST}_sum",
    PROM_TOKEN_DETAIL,
    PROM_UNPRICED,
    PROM_RATE_LIMIT_REMAINING,
    PROM_RATE_LIMIT_LIMIT,
    PROM_TOKEN_COST,
    PROM_LIST_COST,
    PROM_RELAY_BILLED_COST,
    PROM_ACTIVE_OPERATIONS,
)
"""One series of every metric family, named alike by the in-process exporter and the Collector's (tests check both)."""
PROM_LABELS = {
    OPERATION: "gen_ai_operation_name",
    PROVIDER: "gen_ai_provider_name",
    REQUEST_MODEL: "gen_ai_request_model",
    RESPONSE_MODEL: "gen_ai_response_model",
    SERVER_ADDRESS: "server_address",
    SERVER_PORT: "server_port",
    ERROR_TYPE: "error_type",
    TOKEN_TYPE: "gen_ai_token_type",
    RATE_LIMIT_RESOURCE: "gen_ai_rate_limit_resource",
    UNPRICED_REASON: "otel_llm_unpriced_reason",
    TOKEN_MODALITY: "gen_ai_token_modality",
    SCOPE_TENANT: "otel_llm_scope_tenant",
    SCOPE_FEATURE: "otel_llm_scope_feature",
}
