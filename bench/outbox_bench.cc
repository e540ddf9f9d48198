// outbox_bench: O1, the outbox publisher feeding real brokers
// (docs/benchmarks.md, issue 14), against the broker's own client
// publishing the same messages from a plain loop, and against the
// unbatched path, in the same run, paired by round.
//
//   O1_Publisher/<broker>_<store>
//       OutboxPublisher::RunOnce (batch_size 100, the default) until the
//       outbox is empty: N messages claimed from the store's outbox, sent
//       through the broker sink's SendBatch, marked published
//   O1_Publisher/<broker>_<store>_client
//       the baseline: the broker's C client publishing the same N messages
//       (same subject or routing key, payload, headers and message ids)
//       from a plain loop, waiting for every acknowledgement
//   O1_Batch1000/<broker>_<store>, O1_Batch1000/<broker>_<store>_client
//       the same with batch_size 1000
//   O1_Unbatched/<broker>_<store>, O1_Unbatched/<broker>_<store>_unbatched
//       the publisher (batch_size 100) against the same publisher through a
//       sink wrapper that only implements Send, so that the default
//       OutboxSink::SendBatch sends one message at a time and waits for
//       each acknowledgement (the path before issue 14)
//
// Brokers, each compiled in when its sink is built: "nats", a throwaway
// `nats-server -js` (tests/support/nats_server.h), one JetStream stream
// "O1" on file storage capturing "o1.>", published to with
// js_PublishMsgAsync (Nats-Msg-Id set) and js_PublishAsyncComplete;
// "rabbitmq", a throwaway broker (tests/support/rabbitmq_server.h), one
// durable queue "o1" on the default exchange, persistent messages with
// publisher confirms, published with amqp_basic_publish (mandatory), the
// confirms read as they come (after every 100 publishes, without waiting)
// and then the rest.
//
// Stores: "sqlite", a SQLite file with synchronous=NORMAL; with PostgreSQL
// built in, "postgres", a throwaway durable server
// ($EVENTSTORE_BENCH_PG_URL instead when set), a new schema "o1_<run>"
// per run (dropped after it); "memory", an outbox held in memory
// (bench/memory_outbox_store.h): no database work at all, the bound the
// other stores can approach.
//
// Messages: N (--outbox_messages, default 100,000) of a 200-byte payload,
// one destination ("orders": subject "o1.orders"; RabbitMQ: "/o1", the
// queue), a key ("order-<i % 1000>") and four headers (correlation-id,
// causation-id, event-type, traceparent), built once before the run. Every
// run starts from a fresh outbox (a new store, the N messages enqueued
// outside the timing) and a fresh broker (the NATS stream deleted and
// created again; the RabbitMQ queue purged), and checks afterwards that the
// broker holds exactly N messages. Message ids carry a per-run prefix
// ("r<run>/<id>"), so that no run's message is a duplicate of another's.
// Only the publishing is timed: the publisher's RunOnce calls, or the
// client's loop and its wait for the last acknowledgement.
//
// Each workload runs in rounds (--outbox_rounds, default 3), its two sides
// back to back, the order alternating; RatioReporter prints the median of
// the rounds' ratios and their range. Targets: publisher / client >= 0.8;
// publisher / unbatched >= 5 on NATS (no target on RabbitMQ).
//
//   outbox_bench
//   outbox_bench --outbox_messages=2000 --outbox_rounds=1   # smoke run
//   outbox_bench --benchmark_filter=/nats_sqlite           # one pair
//   outbox_bench --outbox_unbatched_messages=10000  # a shorter O1_Unbatched
//   outbox_bench --outbox_batches_in_flight=4  # max_batches_in_flight

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "bench/bench_display.h"
#include "bench/memory_outbox_store.h"
#include "bench/paired_rounds.h"
#include "bench/ratio_reporter.h"
#include "bench/workloads.h"
#include "eventstore/event_store.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "projections/outbox_publisher.h"
#include "tests/support/temp_dir.h"
#ifdef EVENTSTORE_BENCH_POSTGRES
#include <libpq-fe.h>

#include "backends/postgres/postgres_event_store.h"
#include "bench/bench_postgres.h"
#include "tests/support/postgres_server.h"
#endif
#ifdef EVENTSTORE_BENCH_NATS
#include <nats/nats.h>

#include "projections/sinks/nats/nats_outbox_sink.h"
#include "tests/support/nats_server.h"
#endif
#ifdef EVENTSTORE_BENCH_RABBITMQ
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

#include "projections/sinks/rabbitmq/rabbitmq_outbox_sink.h"
#include "tests/support/rabbitmq_server.h"
#endif

namespace eventstore::bench {
namespace {

constexpr size_t kPayloadBytes = 200;
constexpr int kEnqueueChunk = 1000;
// The publishing of one run must end within this long.
constexpr absl::Duration kRunTimeout = absl::Minutes(20);

[[noreturn]] void Die(const absl::Status& status, std::string_view what) {
  std::cerr << "outbox_bench: " << what << ": " << status << std::endl;
  std::exit(1);
}

[[noreturn, maybe_unused]] void Die(std::string_view what) {
  Die(absl::InternalError("failed"), what);
}

struct Flags {
  int64_t messages = 100000;
  // 0: `messages`.
  int64_t unbatched_messages = 0;
  int rounds = 3;
  // OutboxPublisherOptions::max_batches_in_flight; 0: the default.
  int batches_in_flight = 0;
};

Flags& TheFlags() {
  static auto* flags = new Flags;
  return *flags;
}

// Takes the --outbox_* flags out of argv.
void ParseFlags(int& argc, char** argv) {
  Flags& f = TheFlags();
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (!absl::StartsWith(arg, "--outbox_")) {
      argv[kept++] = argv[i];
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    bool ok = true;
    if (name == "--outbox_messages") {
      ok = absl::SimpleAtoi(value, &f.messages) && f.messages >= 1;
    } else if (name == "--outbox_unbatched_messages") {
      ok = absl::SimpleAtoi(value, &f.unbatched_messages) &&
           f.unbatched_messages >= 1;
    } else if (name == "--outbox_rounds") {
      ok = absl::SimpleAtoi(value, &f.rounds) && f.rounds >= 1;
    } else if (name == "--outbox_batches_in_flight") {
      ok = absl::SimpleAtoi(value, &f.batches_in_flight) &&
           f.batches_in_flight >= 1;
    } else {
      ok = false;
    }
    if (!ok) Die(absl::InvalidArgumentError(arg), "bad flag");
  }
  if (f.unbatched_messages == 0) f.unbatched_messages = f.messages;
  argc = kept;
}

// The messages of one run, the same for every side: ids 1..N on a fresh
// outbox, in this order.
const std::vector<OutboxMessage>& Messages(const std::string& destination) {
  static auto* by_destination =
      new std::map<std::string, std::vector<OutboxMessage>>;
  std::vector<OutboxMessage>& messages = (*by_destination)[destination];
  const int64_t n =
      std::max(TheFlags().messages, TheFlags().unbatched_messages);
  if (static_cast<int64_t>(messages.size()) == n) return messages;
  messages.clear();
  messages.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    OutboxMessage& m = messages.emplace_back();
    m.destination = destination;
    m.key = absl::StrCat("order-", i % 1000);
    m.payload = absl::StrFormat("{\"order\":%d,\"amount\":%d,\"note\":\"", i,
                                (i * 37) % 100000);
    m.payload.resize(kPayloadBytes - 2, 'x');
    m.payload += "\"}";
    m.headers[kCorrelationIdHeader] = absl::StrCat("corr-", i / 10);
    m.headers[kCausationIdHeader] = absl::StrCat("cause-", i);
    m.headers[kEventTypeHeader] = "eventstore.bench.v1.OrderPlaced";
    m.headers["traceparent"] =
        absl::StrFormat("00-%032x-%016x-01", static_cast<uint64_t>(i + 1),
                        static_cast<uint64_t>(i + 7));
  }
  return messages;
}

// --- stores ------------------------------------------------------------------

struct Env {
  std::unique_ptr<test::TempDir> dir;
#ifdef EVENTSTORE_BENCH_POSTGRES
  std::unique_ptr<test::PostgresServer> pg_server;
  PostgresOptions pg;
#endif
#ifdef EVENTSTORE_BENCH_NATS
  std::unique_ptr<test::NatsServer> nats_server;
  natsConnection* nats_admin = nullptr;
  jsCtx* nats_admin_js = nullptr;
#endif
#ifdef EVENTSTORE_BENCH_RABBITMQ
  std::unique_ptr<test::RabbitMqServer> rabbitmq_server;
  amqp_connection_state_t rabbitmq_admin = nullptr;
#endif
  // Runs so far, naming stores and message ids apart.
  int runs = 0;
};

Env* env = nullptr;

// A fresh store of `store_name` ("sqlite", "postgres", "memory") for run
// `run`, and how to throw it away after the run.
struct RunStore {
  // "memory": the store `store` wraps (declared first: destroyed last).
  std::unique_ptr<EventStore> inner;
  std::unique_ptr<EventStore> store;
  std::function<void()> drop;
};

RunStore OpenFreshStore(const std::string& store_name, int run) {
  RunStore result;
  if (store_name == "memory") {
    // The publisher takes an EventStore: an in-memory SQLite one, whose
    // own outbox is never used.
    SqliteOptions options;
    options.path = ":memory:";
    absl::StatusOr<std::unique_ptr<EventStore>> inner =
        SqliteEventStore::Open(options);
    if (!inner.ok()) Die(inner.status(), "opening SQLite in memory");
    result.inner = *std::move(inner);
    result.store = std::make_unique<StoreWithMemoryOutbox>(result.inner.get());
    result.drop = [] {};
    return result;
  }
  if (store_name == "sqlite") {
    SqliteOptions options;
    options.path = env->dir->File(absl::StrCat("o1-", run, ".db"));
    options.synchronous = SqliteOptions::Synchronous::kNormal;
    absl::StatusOr<std::unique_ptr<EventStore>> store =
        SqliteEventStore::Open(options);
    if (!store.ok()) Die(store.status(), "opening SQLite");
    result.store = *std::move(store);
    result.drop = [path = options.path] {
      std::error_code ignored;
      for (const char* suffix : {"", "-wal", "-shm"}) {
        std::filesystem::remove(path + suffix, ignored);
      }
    };
    return result;
  }
#ifdef EVENTSTORE_BENCH_POSTGRES
  if (store_name == "postgres") {
    PostgresOptions options = env->pg;
    options.schema = absl::StrCat("o1_", run);
    absl::StatusOr<std::unique_ptr<EventStore>> store =
        PostgresEventStore::Open(options);
    if (!store.ok()) Die(store.status(), "opening PostgreSQL");
    result.store = *std::move(store);
    result.drop = [conninfo = options.conninfo, schema = options.schema] {
      PGconn* conn = PQconnectdb(conninfo.c_str());
      if (PQstatus(conn) == CONNECTION_OK) {
        // Not the NOTICE listing every table dropped.
        PQsetNoticeProcessor(
            conn, [](void*, const char*) {}, nullptr);
        PQclear(PQexec(
            conn, absl::StrCat("DROP SCHEMA ", schema, " CASCADE").c_str()));
      }
      PQfinish(conn);
    };
    return result;
  }
#endif
  Die(absl::InvalidArgumentError(store_name), "unknown store");
}

// Enqueues `n` of `messages` (outside the timing).
void Fill(EventStore& store, const std::vector<OutboxMessage>& messages,
          int64_t n) {
  for (int64_t first = 0; first < n; first += kEnqueueChunk) {
    const auto chunk = absl::MakeConstSpan(messages).subspan(
        first, std::min<int64_t>(kEnqueueChunk, n - first));
    absl::Status enqueued = store.outbox().Enqueue(chunk);
    if (!enqueued.ok()) Die(enqueued, "Enqueue");
  }
}

// --- the two publisher sides -----------------------------------------------

// Sends one message at a time: the default OutboxSink::SendBatch calls Send
// for each entry and waits for its acknowledgement.
class UnbatchedSink final : public OutboxSink {
 public:
  explicit UnbatchedSink(OutboxSink& inner) : inner_(inner) {}
  absl::Status Send(const OutboxEntry& entry) override {
    return inner_.Send(entry);
  }

 private:
  OutboxSink& inner_;
};

// A broker as the benchmark drives it.
struct Broker {
  std::string name;
  // The destination of every message.
  std::string destination;
  // Empties the broker's stream or queue before a run.
  std::function<void()> reset;
  // A sink whose message ids start with `id_prefix`.
  std::function<std::unique_ptr<OutboxSink>(const std::string& id_prefix)>
      connect_sink;
  // The client baseline: publishes `messages` (ids 1..N after `id_prefix`)
  // and waits for every acknowledgement; `state` pauses the timing around
  // its setup.
  std::function<void(benchmark::State& state,
                     absl::Span<const OutboxMessage> messages,
                     const std::string& id_prefix)>
      client_publish;
  // The messages the broker holds now.
  std::function<int64_t()> count;
};

void CheckCount(const Broker& broker, int64_t expected, std::string_view what) {
  const int64_t held = broker.count();
  if (held != expected) {
    Die(absl::DataLossError(absl::StrCat(broker.name, " holds ", held,
                                         " messages after the run, expected ",
                                         expected)),
        what);
  }
}

// One run of the publisher: `n` messages from a fresh outbox to a fresh
// broker, with batch_size `batch`, one at a time when `unbatched`.
void PublisherRun(benchmark::State& state, const Broker& broker,
                  const std::string& store_name, int batch, bool unbatched,
                  int64_t n) {
  for (auto _ : state) {
    state.PauseTiming();
    const int run = ++env->runs;
    RunStore fresh = OpenFreshStore(store_name, run);
    Fill(*fresh.store, Messages(broker.destination), n);
    broker.reset();
    std::unique_ptr<OutboxSink> sink =
        broker.connect_sink(absl::StrCat("r", run, "/"));
    std::unique_ptr<OutboxSink> wrapper;
    OutboxSink* used = sink.get();
    if (unbatched) {
      wrapper = std::make_unique<UnbatchedSink>(*sink);
      used = wrapper.get();
    }
    OutboxPublisherOptions options;
    options.batch_size = batch;
    if (TheFlags().batches_in_flight > 0) {
      options.max_batches_in_flight = TheFlags().batches_in_flight;
    }
    absl::StatusOr<std::unique_ptr<OutboxPublisher>> publisher =
        OutboxPublisher::Create(*fresh.store, *used, options);
    if (!publisher.ok()) Die(publisher.status(), "OutboxPublisher::Create");
    state.ResumeTiming();

    int64_t published = 0;
    const absl::Time deadline = absl::Now() + kRunTimeout;
    while (published < n) {
      absl::StatusOr<OutboxPublishResult> result = (*publisher)->RunOnce();
      if (!result.ok()) Die(result.status(), "RunOnce");
      if (result->failed_sends > 0) {
        Die(absl::InternalError(
                absl::StrCat(result->failed_sends, " failed sends")),
            "RunOnce");
      }
      published += result->published;
      if (result->published == 0 || absl::Now() > deadline) break;
    }

    state.PauseTiming();
    if (published != n) {
      Die(absl::InternalError(absl::StrCat("published ", published, " of ", n)),
          "RunOnce");
    }
    CheckCount(broker, n, "publisher");
    publisher->reset();
    wrapper.reset();
    sink.reset();
    fresh.store.reset();
    fresh.drop();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * n);
}

// One run of the broker's client: the same `n` messages from a plain loop.
void ClientRun(benchmark::State& state, const Broker& broker, int64_t n) {
  for (auto _ : state) {
    state.PauseTiming();
    const int run = ++env->runs;
    broker.reset();
    state.ResumeTiming();
    broker.client_publish(
        state, absl::MakeConstSpan(Messages(broker.destination)).subspan(0, n),
        absl::StrCat("r", run, "/"));
    state.PauseTiming();
    CheckCount(broker, n, "client");
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * n);
}

// --- NATS JetStream ----------------------------------------------------------

#ifdef EVENTSTORE_BENCH_NATS
constexpr char kNatsStream[] = "O1";
constexpr char kNatsSubjectPrefix[] = "o1.";
// As the sink's default (NatsOutboxSinkOptions::max_in_flight).
constexpr int kNatsMaxPending = 4096;

void NatsCheck(natsStatus s, std::string_view what) {
  if (s != NATS_OK) {
    Die(absl::UnavailableError(natsStatus_GetText(s)), what);
  }
}

natsConnection* NatsConnect() {
  natsConnection* conn = nullptr;
  NatsCheck(natsConnection_ConnectTo(&conn, env->nats_server->url().c_str()),
            "connecting to NATS");
  return conn;
}

// Deletes the stream (when there is one) and creates it again, as the sink
// would create it (file storage, a 2-minute duplicate window).
void NatsResetStream() {
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s =
      js_DeleteStream(env->nats_admin_js, kNatsStream, nullptr, &code);
  if (s != NATS_OK && s != NATS_NOT_FOUND) NatsCheck(s, "js_DeleteStream");
  const std::string subjects = absl::StrCat(kNatsSubjectPrefix, ">");
  const char* subject_ptrs[] = {subjects.c_str()};
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = kNatsStream;
  config.Subjects = subject_ptrs;
  config.SubjectsLen = 1;
  config.Storage = js_FileStorage;
  config.Duplicates = absl::ToInt64Nanoseconds(absl::Minutes(2));
  jsStreamInfo* info = nullptr;
  NatsCheck(js_AddStream(&info, env->nats_admin_js, &config, nullptr, &code),
            "js_AddStream");
  jsStreamInfo_Destroy(info);
}

int64_t NatsCount() {
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  NatsCheck(
      js_GetStreamInfo(&info, env->nats_admin_js, kNatsStream, nullptr, &code),
      "js_GetStreamInfo");
  const int64_t msgs = static_cast<int64_t>(info->State.Msgs);
  jsStreamInfo_Destroy(info);
  return msgs;
}

std::unique_ptr<OutboxSink> NatsSink(const std::string& id_prefix) {
  NatsOutboxSinkOptions options;
  options.url = env->nats_server->url();
  options.subject_prefix = kNatsSubjectPrefix;
  options.msg_id_prefix = id_prefix;
  absl::StatusOr<std::unique_ptr<NatsOutboxSink>> sink =
      NatsOutboxSink::Connect(options);
  if (!sink.ok()) Die(sink.status(), "NatsOutboxSink::Connect");
  return *std::move(sink);
}

struct NatsClientErrors {
  std::atomic<int64_t> count{0};
};

void OnNatsPublishError(jsCtx*, jsPubAckErr*, void* closure) {
  static_cast<NatsClientErrors*>(closure)->count.fetch_add(1);
}

// What a JetStream user writes: one message per outbox message, with its
// subject, payload, headers and Nats-Msg-Id, handed to js_PublishMsgAsync,
// then js_PublishAsyncComplete.
void NatsClientPublish(benchmark::State& state,
                       absl::Span<const OutboxMessage> messages,
                       const std::string& id_prefix) {
  state.PauseTiming();
  natsConnection* conn = NatsConnect();
  NatsClientErrors errors;
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.PublishAsync.MaxPending = kNatsMaxPending;
  js_options.PublishAsync.ErrHandler = &OnNatsPublishError;
  js_options.PublishAsync.ErrHandlerClosure = &errors;
  jsCtx* js = nullptr;
  NatsCheck(natsConnection_JetStream(&js, conn, &js_options),
            "natsConnection_JetStream");
  state.ResumeTiming();

  int64_t id = 0;
  for (const OutboxMessage& m : messages) {
    const std::string subject = absl::StrCat(kNatsSubjectPrefix, m.destination);
    const std::string msg_id = absl::StrCat(id_prefix, ++id);
    natsMsg* msg = nullptr;
    natsStatus s =
        natsMsg_Create(&msg, subject.c_str(), nullptr, m.payload.data(),
                       static_cast<int>(m.payload.size()));
    for (auto it = m.headers.begin(); s == NATS_OK && it != m.headers.end();
         ++it) {
      s = natsMsgHeader_Set(msg, it->first.c_str(), it->second.c_str());
    }
    if (s == NATS_OK && !m.key.empty()) {
      s = natsMsgHeader_Set(msg, kNatsOutboxKeyHeader, m.key.c_str());
    }
    NatsCheck(s, "building a NATS message");
    jsPubOptions publish_options;
    jsPubOptions_Init(&publish_options);
    publish_options.MsgId = msg_id.c_str();
    s = js_PublishMsgAsync(js, &msg, &publish_options);
    natsMsg_Destroy(msg);  // null when the library took it
    NatsCheck(s, "js_PublishMsgAsync");
  }
  jsPubOptions complete_options;
  jsPubOptions_Init(&complete_options);
  complete_options.MaxWait = absl::ToInt64Milliseconds(kRunTimeout);
  NatsCheck(js_PublishAsyncComplete(js, &complete_options),
            "js_PublishAsyncComplete");

  state.PauseTiming();
  jsCtx_Destroy(js);
  natsConnection_Close(conn);
  natsConnection_Destroy(conn);
  if (errors.count.load() > 0) {
    Die(absl::InternalError(absl::StrCat(errors.count.load(), " errors")),
        "NATS client publish");
  }
  state.ResumeTiming();
}

Broker NatsBroker() {
  test::NatsServerOptions options;
  absl::StatusOr<std::unique_ptr<test::NatsServer>> server =
      test::NatsServer::Start(options);
  if (!server.ok()) Die(server.status(), "starting nats-server");
  env->nats_server = *std::move(server);
  env->nats_admin = NatsConnect();
  NatsCheck(
      natsConnection_JetStream(&env->nats_admin_js, env->nats_admin, nullptr),
      "natsConnection_JetStream");
  Broker broker;
  broker.name = "nats";
  broker.destination = "orders";
  broker.reset = NatsResetStream;
  broker.connect_sink = NatsSink;
  broker.client_publish = NatsClientPublish;
  broker.count = NatsCount;
  return broker;
}

void NatsTeardown() {
  jsCtx_Destroy(env->nats_admin_js);
  natsConnection_Close(env->nats_admin);
  natsConnection_Destroy(env->nats_admin);
  env->nats_server.reset();
}
#endif  // EVENTSTORE_BENCH_NATS

// --- RabbitMQ ----------------------------------------------------------------

#ifdef EVENTSTORE_BENCH_RABBITMQ
constexpr char kRabbitMqQueue[] = "o1";
constexpr amqp_channel_t kChannel = 1;
// Publishes between two looks at the confirms that arrived meanwhile.
constexpr int kConfirmPollEvery = 100;

void RabbitMqCheck(amqp_rpc_reply_t reply, std::string_view what) {
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) return;
  std::string text = "error";
  if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
    text = amqp_error_string2(reply.library_error);
  } else if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
    text = "the broker refused";
  }
  Die(absl::UnavailableError(text), what);
}

amqp_bytes_t Bytes(std::string_view s) {
  amqp_bytes_t b;
  b.len = s.size();
  b.bytes = const_cast<char*>(s.data());
  return b;
}

// A connection with channel 1 open; with confirms when `confirm`.
amqp_connection_state_t RabbitMqConnect(bool confirm) {
  amqp_connection_state_t conn = amqp_new_connection();
  amqp_socket_t* socket = amqp_tcp_socket_new(conn);
  if (socket == nullptr) Die("amqp_tcp_socket_new");
  if (amqp_socket_open(socket, "127.0.0.1", env->rabbitmq_server->port()) !=
      AMQP_STATUS_OK) {
    Die("connecting to RabbitMQ");
  }
  RabbitMqCheck(amqp_login(conn, "/", 0, AMQP_DEFAULT_FRAME_SIZE, 0,
                           AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
                "amqp_login");
  amqp_channel_open(conn, kChannel);
  RabbitMqCheck(amqp_get_rpc_reply(conn), "amqp_channel_open");
  if (confirm) {
    amqp_confirm_select(conn, kChannel);
    RabbitMqCheck(amqp_get_rpc_reply(conn), "amqp_confirm_select");
  }
  return conn;
}

void RabbitMqClose(amqp_connection_state_t conn) {
  amqp_channel_close(conn, kChannel, AMQP_REPLY_SUCCESS);
  amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn);
}

void RabbitMqPurge() {
  amqp_queue_purge(env->rabbitmq_admin, kChannel, Bytes(kRabbitMqQueue));
  RabbitMqCheck(amqp_get_rpc_reply(env->rabbitmq_admin), "amqp_queue_purge");
}

int64_t RabbitMqCount() {
  amqp_queue_declare_ok_t* ok = amqp_queue_declare(
      env->rabbitmq_admin, kChannel, Bytes(kRabbitMqQueue), /*passive=*/1,
      /*durable=*/1, /*exclusive=*/0, /*auto_delete=*/0, amqp_empty_table);
  RabbitMqCheck(amqp_get_rpc_reply(env->rabbitmq_admin), "queue.declare");
  return ok->message_count;
}

std::unique_ptr<OutboxSink> RabbitMqSink(const std::string& id_prefix) {
  RabbitMqOutboxSinkOptions options;
  options.url = env->rabbitmq_server->url();
  options.message_id_prefix = id_prefix;
  absl::StatusOr<std::unique_ptr<RabbitMqOutboxSink>> sink =
      RabbitMqOutboxSink::Connect(options);
  if (!sink.ok()) Die(sink.status(), "RabbitMqOutboxSink::Connect");
  return *std::move(sink);
}

// Reads the frames that came (waiting up to `wait`; zero: only those
// already there) and counts the confirms; false when none came in time.
// Dies on a nack, a return or a closed channel: nothing of the kind is
// expected here.
bool RabbitMqReadConfirms(amqp_connection_state_t conn, absl::Duration wait,
                          uint64_t* confirmed) {
  bool any = false;
  for (;;) {
    amqp_maybe_release_buffers(conn);
    timeval tv;
    const absl::Duration d = any ? absl::ZeroDuration() : wait;
    tv.tv_sec = static_cast<time_t>(absl::ToInt64Seconds(d));
    tv.tv_usec = static_cast<suseconds_t>(
        absl::ToInt64Microseconds(d - absl::Seconds(tv.tv_sec)));
    amqp_frame_t frame;
    const int read = amqp_simple_wait_frame_noblock(conn, &frame, &tv);
    if (read == AMQP_STATUS_TIMEOUT) return any;
    if (read != AMQP_STATUS_OK) {
      Die(absl::UnavailableError(amqp_error_string2(read)), "reading confirms");
    }
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;
    switch (frame.payload.method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        const auto* ack =
            static_cast<const amqp_basic_ack_t*>(frame.payload.method.decoded);
        // Tags count from 1; `multiple` confirms every tag up to this one.
        if (ack->multiple) {
          *confirmed = std::max(*confirmed, ack->delivery_tag);
        } else {
          ++*confirmed;
        }
        any = true;
        break;
      }
      case AMQP_BASIC_NACK_METHOD:
        Die("RabbitMQ nacked a message");
      case AMQP_BASIC_RETURN_METHOD:
        Die("RabbitMQ returned a message");
      case AMQP_CHANNEL_CLOSE_METHOD:
      case AMQP_CONNECTION_CLOSE_METHOD:
        Die("RabbitMQ closed the channel");
      default:
        break;
    }
  }
}

// What a RabbitMQ user writes: basic.publish of each message, persistent,
// mandatory, with the sink's properties (message_id, correlation_id, type,
// timestamp, the headers as a table), on a channel in confirm mode; the
// confirms read as they come, then the rest.
void RabbitMqClientPublish(benchmark::State& state,
                           absl::Span<const OutboxMessage> messages,
                           const std::string& id_prefix) {
  state.PauseTiming();
  amqp_connection_state_t conn = RabbitMqConnect(/*confirm=*/true);
  state.ResumeTiming();

  uint64_t published = 0;
  uint64_t confirmed = 0;
  const uint64_t timestamp =
      static_cast<uint64_t>(absl::ToUnixSeconds(absl::Now()));
  std::vector<amqp_table_entry_t> headers;
  for (const OutboxMessage& m : messages) {
    const std::string message_id = absl::StrCat(id_prefix, published + 1);
    amqp_basic_properties_t properties = {};
    properties._flags = AMQP_BASIC_DELIVERY_MODE_FLAG |
                        AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_HEADERS_FLAG |
                        AMQP_BASIC_TIMESTAMP_FLAG;
    properties.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    properties.message_id = Bytes(message_id);
    properties.timestamp = timestamp;
    headers.clear();
    for (const auto& [name, value] : m.headers) {
      amqp_table_entry_t header;
      header.key = Bytes(name);
      header.value.kind = AMQP_FIELD_KIND_UTF8;
      header.value.value.bytes = Bytes(value);
      headers.push_back(header);
      if (name == kCorrelationIdHeader) {
        properties._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        properties.correlation_id = Bytes(value);
      } else if (name == kEventTypeHeader) {
        properties._flags |= AMQP_BASIC_TYPE_FLAG;
        properties.type = Bytes(value);
      }
    }
    properties.headers.num_entries = static_cast<int>(headers.size());
    properties.headers.entries = headers.data();
    // The destination "/o1": the default exchange, routing key "o1".
    const int sent = amqp_basic_publish(
        conn, kChannel, amqp_empty_bytes,
        Bytes(std::string_view(m.destination).substr(1)), /*mandatory=*/1,
        /*immediate=*/0, &properties, Bytes(m.payload));
    if (sent != AMQP_STATUS_OK) {
      Die(absl::UnavailableError(amqp_error_string2(sent)),
          "amqp_basic_publish");
    }
    if (++published % kConfirmPollEvery == 0) {
      RabbitMqReadConfirms(conn, absl::ZeroDuration(), &confirmed);
    }
  }
  const absl::Time deadline = absl::Now() + kRunTimeout;
  while (confirmed < published) {
    if (!RabbitMqReadConfirms(conn, deadline - absl::Now(), &confirmed) &&
        absl::Now() > deadline) {
      Die(absl::DeadlineExceededError("no confirm"), "RabbitMQ client");
    }
  }

  state.PauseTiming();
  RabbitMqClose(conn);
  state.ResumeTiming();
}

Broker RabbitMqBroker() {
  absl::StatusOr<std::unique_ptr<test::RabbitMqServer>> server =
      test::RabbitMqServer::Start(test::RabbitMqServerOptions());
  if (!server.ok()) Die(server.status(), "starting rabbitmq-server");
  env->rabbitmq_server = *std::move(server);
  env->rabbitmq_admin = RabbitMqConnect(/*confirm=*/false);
  amqp_queue_declare(env->rabbitmq_admin, kChannel, Bytes(kRabbitMqQueue),
                     /*passive=*/0, /*durable=*/1, /*exclusive=*/0,
                     /*auto_delete=*/0, amqp_empty_table);
  RabbitMqCheck(amqp_get_rpc_reply(env->rabbitmq_admin), "queue.declare");
  Broker broker;
  broker.name = "rabbitmq";
  broker.destination = absl::StrCat("/", kRabbitMqQueue);
  broker.reset = RabbitMqPurge;
  broker.connect_sink = RabbitMqSink;
  broker.client_publish = RabbitMqClientPublish;
  broker.count = RabbitMqCount;
  return broker;
}

void RabbitMqTeardown() {
  RabbitMqClose(env->rabbitmq_admin);
  env->rabbitmq_server.reset();
}
#endif  // EVENTSTORE_BENCH_RABBITMQ

// --- registration ------------------------------------------------------------

std::vector<Broker>* brokers = nullptr;

// The stores built in, in order.
std::vector<std::string> Stores() {
  std::vector<std::string> stores = {"sqlite"};
#ifdef EVENTSTORE_BENCH_POSTGRES
  stores.push_back("postgres");
#endif
  stores.push_back("memory");
  return stores;
}

void Setup() {
  env = new Env;
  absl::StatusOr<std::unique_ptr<test::TempDir>> dir = test::TempDir::Create();
  if (!dir.ok()) Die(dir.status(), "temporary directory");
  env->dir = *std::move(dir);
#ifdef EVENTSTORE_BENCH_POSTGRES
  absl::StatusOr<PostgresOptions> pg =
      BenchPostgresOptions("o1", &env->pg_server);
  if (!pg.ok()) Die(pg.status(), "starting PostgreSQL");
  env->pg = *std::move(pg);
#endif
  brokers = new std::vector<Broker>;
#ifdef EVENTSTORE_BENCH_NATS
  brokers->push_back(NatsBroker());
#endif
#ifdef EVENTSTORE_BENCH_RABBITMQ
  brokers->push_back(RabbitMqBroker());
#endif
}

void Teardown() {
  delete brokers;
  brokers = nullptr;
#ifdef EVENTSTORE_BENCH_NATS
  NatsTeardown();
#endif
#ifdef EVENTSTORE_BENCH_RABBITMQ
  RabbitMqTeardown();
#endif
#ifdef EVENTSTORE_BENCH_POSTGRES
  env->pg_server.reset();
#endif
  env->dir.reset();
  delete env;
  env = nullptr;
}

int Main(int argc, char** argv) {
  ParseFlags(argc, argv);
  BenchDisplay display = MakeBenchDisplay(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const Flags& flags = TheFlags();
  benchmark::AddCustomContext("outbox_messages",
                              std::to_string(flags.messages));
  benchmark::AddCustomContext("outbox_unbatched_messages",
                              std::to_string(flags.unbatched_messages));
  benchmark::AddCustomContext("payload_bytes", std::to_string(kPayloadBytes));
  benchmark::AddCustomContext(
      "max_batches_in_flight",
      std::to_string(flags.batches_in_flight > 0
                         ? flags.batches_in_flight
                         : OutboxPublisherOptions().max_batches_in_flight));
  Setup();

  const Workload publisher = {"O1_Publisher", 0.8,   1,  flags.rounds,
                              flags.rounds,   false, "", "_client",
                              "vs client"};
  const Workload batch1000 = {"O1_Batch1000", 0.8,   1,  flags.rounds,
                              flags.rounds,   false, "", "_client",
                              "vs client"};
  const Workload unbatched = {"O1_Unbatched", 5.0,   1,  flags.rounds,
                              flags.rounds,   false, "", "_unbatched",
                              "vs unbatched"};
  std::vector<Backend> backends;
  for (const Broker& broker : *brokers) {
    for (const std::string& store : Stores()) {
      Backend& backend = backends.emplace_back();
      backend.name = absl::StrCat(broker.name, "_", store);
      // The issue expects >= 5x from batching on NATS only.
      if (broker.name != "nats") backend.target_ratios[unbatched.name] = 0;
      // The memory outbox is a bound to compare with, not a store.
      if (store == "memory") {
        for (const Workload* w : {&publisher, &batch1000, &unbatched}) {
          backend.target_ratios[w->name] = 0;
        }
      }
    }
  }
  const Workload workloads[] = {publisher, batch1000, unbatched};
  RatioReporter reporter(std::move(display.reporter), workloads, backends,
                         display.table_out);
  reporter.set_title(absl::StrCat(
      "O1: OutboxPublisher (RunOnce until the outbox is empty) publishing ",
      flags.messages,
      " messages to the broker,\nagainst the broker's own client publishing "
      "the same messages from a plain loop\n(O1_Publisher: batch_size 100; "
      "O1_Batch1000: batch_size 1000), and against\nthe same publisher "
      "sending one message at a time (O1_Unbatched, ",
      flags.unbatched_messages,
      " messages).\nMessages/s are each side's median over rounds; the ratio "
      "is the median of the\nrounds' ratios (each round runs the two sides "
      "back to back), with their range."));

  const int64_t n = flags.messages;
  const int64_t n_unbatched = flags.unbatched_messages;
  for (const Broker& broker : *brokers) {
    for (const std::string& store : Stores()) {
      const std::string backend = absl::StrCat(broker.name, "_", store);
      const Broker* b = &broker;
      const auto client = [b, n](benchmark::State& state) {
        ClientRun(state, *b, n);
      };
      RegisterPairedRounds(
          publisher, backend,
          [b, store, n](benchmark::State& state) {
            PublisherRun(state, *b, store, 100, false, n);
          },
          client);
      RegisterPairedRounds(
          batch1000, backend,
          [b, store, n](benchmark::State& state) {
            PublisherRun(state, *b, store, 1000, false, n);
          },
          client);
      RegisterPairedRounds(
          unbatched, backend,
          [b, store, n_unbatched](benchmark::State& state) {
            PublisherRun(state, *b, store, 100, false, n_unbatched);
          },
          [b, store, n_unbatched](benchmark::State& state) {
            PublisherRun(state, *b, store, 100, true, n_unbatched);
          });
    }
  }
  benchmark::RunSpecifiedBenchmarks(&reporter);
  Teardown();
  benchmark::Shutdown();
  return 0;
}

}  // namespace
}  // namespace eventstore::bench

int main(int argc, char** argv) { return eventstore::bench::Main(argc, argv); }
