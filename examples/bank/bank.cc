// bank: an event-sourced bank, end to end.
//
//   ./bank                       # EVENTSTORE_URL, else sqlite:bank.db
//   ./bank sqlite::memory:
//   ./bank 'postgresql://user@host/db?schema=bank'
//
// 1. Accounts are Account aggregates (account.h) saved through an
//    AggregateRepository: optimistic concurrency, a conflict retried with
//    Update(), snapshots every 5 events, a command context in every event's
//    metadata.
// 2. A large withdrawal enqueues a fraud alert in the outbox, in the same
//    append as its event; a withdrawal whose save loses a race enqueues
//    nothing.
// 3. A faulty "import" writes a deposit to an account that was never
//    opened: the projection's handler fails on it, and the runner parks it
//    in the dead-letter store and moves on.
// 4. BalancesProjection (balances_projection.h) keeps a balance table in the
//    same database, exactly once: its rows and checkpoint commit together.
// 5. The account is opened (the fix) and the parked deposit replayed.
// 6. An OutboxPublisher sends the alerts to a sink that prints them.
// 7. The read model is checked against the aggregates.
//
// Each run uses new account ids, so it can run again on the same database.
// Exit status 0 when every step did what it should.

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "bank/account.h"
#include "bank/balances_projection.h"
#include "bank/v1/accounts.pb.h"
#include "eventstore/aggregate_repository.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/command_context.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/errors.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/open_event_store.h"
#include "eventstore/outbox_store.h"
#include "eventstore/sql_transaction.h"
#include "eventstore/status_macros.h"
#include "eventstore/uuid.h"
#include "projections/outbox_publisher.h"
#include "projections/projection_runner.h"

namespace {

using bank::Account;
using eventstore::AggregateRepository;
using eventstore::EventStore;

std::string Money(int64_t cents) {
  return absl::StrFormat("%s%d.%02d", cents < 0 ? "-" : "",
                         std::abs(cents) / 100, std::abs(cents) % 100);
}

// Delivers outbox messages by printing them. A real sink would send them
// to a broker, and drop duplicates by entry.id (delivery is at-least-once).
class PrintingSink : public eventstore::OutboxSink {
 public:
  absl::Status Send(const eventstore::OutboxEntry& entry) override {
    bank::v1::LargeWithdrawalAlert alert;
    if (!alert.ParseFromString(entry.message.payload)) {
      return absl::InvalidArgumentError(
          absl::StrCat("outbox message ", entry.id, " is not an alert"));
    }
    std::cout << "  sent to " << entry.message.destination << ": "
              << alert.account_id() << " withdrew "
              << Money(alert.amount_cents()) << ", balance after "
              << Money(alert.balance_after_cents()) << "\n";
    sent_.push_back(alert.account_id());
    return absl::OkStatus();
  }
  // The accounts of the alerts sent, in order.
  const std::vector<std::string>& sent() const { return sent_; }

 private:
  std::vector<std::string> sent_;
};

class BankExample {
 public:
  explicit BankExample(EventStore& store)
      : store_(store), run_(RunId()), accounts_(store, RepositoryOptions()) {}

  absl::Status Run() {
    ES_RETURN_IF_ERROR(CreateReadModel());
    ES_RETURN_IF_ERROR(OpenAndOperateAccounts());
    ES_RETURN_IF_ERROR(ConflictAndRetry());
    ES_RETURN_IF_ERROR(FaultyImport());
    ES_RETURN_IF_ERROR(ProjectAndRepair());
    ES_RETURN_IF_ERROR(PublishOutbox());
    return CheckReadModel();
  }

 private:
  // Eight random hex digits: the end of a UUID (its start is a timestamp).
  static std::string RunId() {
    const std::string uuid = eventstore::Uuid::Generate().ToString();
    return uuid.substr(uuid.size() - 8);
  }

  static eventstore::AggregateRepositoryOptions RepositoryOptions() {
    eventstore::AggregateRepositoryOptions options;
    options.stream_prefix = bank::kAccountStreamPrefix;
    options.snapshot_every = 5;
    options.context.actor = "bank-example";
    return options;
  }

  std::string Id(const std::string& name) const {
    return absl::StrCat(name, "-", run_);
  }

  absl::Status CreateReadModel() {
    ES_ASSIGN_OR_RETURN(std::unique_ptr<eventstore::SqlTransaction> tx,
                        store_.BeginTransaction());
    ES_RETURN_IF_ERROR(bank::BalancesProjection::CreateTable(*tx));
    return tx->Commit();
  }

  absl::Status OpenAndOperateAccounts() {
    std::cout << "1. accounts (run " << run_ << ")\n";
    eventstore::CommandContext context;
    context.correlation_id = absl::StrCat("onboarding-", run_);
    for (const auto& [name, owner] :
         std::vector<std::pair<std::string, std::string>>{{"alice", "Alice"},
                                                          {"bob", "Bob"}}) {
      Account account(Id(name));
      ES_RETURN_IF_ERROR(account.Open(owner));
      ES_RETURN_IF_ERROR(account.Deposit(100000, "opening deposit"));
      ES_RETURN_IF_ERROR(accounts_.Save(account, context));
      std::cout << "  opened " << account.id() << " for " << owner << " with "
                << Money(account.balance_cents()) << "\n";
    }

    // Load, run a command, save; reloaded and run again on a conflict.
    for (int i = 1; i <= 4; ++i) {
      ES_RETURN_IF_ERROR(
          accounts_
              .Update(Id("alice"),
                      [&](Account& a) { return a.Deposit(2500 * i, "salary"); })
              .status());
    }
    ES_ASSIGN_OR_RETURN(std::unique_ptr<Account> alice,
                        accounts_.Update(Id("alice"), [](Account& a) {
                          return a.Withdraw(60000,
                                            "car");  // large: a fraud alert
                        }));
    std::cout << "  " << alice->id() << ": balance "
              << Money(alice->balance_cents()) << " after "
              << alice->transactions() << " transactions (version "
              << alice->version() << ")\n";

    // A command the aggregate refuses writes nothing.
    absl::StatusOr<std::unique_ptr<Account>> refused = accounts_.Update(
        Id("bob"), [](Account& a) { return a.Withdraw(5000000, "yacht"); });
    if (refused.ok()) return absl::InternalError("the yacht was bought");
    std::cout << "  refused: " << refused.status().message() << "\n";
    return absl::OkStatus();
  }

  absl::Status ConflictAndRetry() {
    std::cout << "2. a conflict\n";
    ES_ASSIGN_OR_RETURN(std::unique_ptr<Account> teller,
                        accounts_.Load(Id("bob")));
    ES_ASSIGN_OR_RETURN(std::unique_ptr<Account> atm,
                        accounts_.Load(Id("bob")));
    ES_RETURN_IF_ERROR(atm->Withdraw(20000, "cash"));
    ES_RETURN_IF_ERROR(accounts_.Save(*atm));

    // The teller's copy is stale: its save (and its outbox alert) is
    // rolled back as a whole.
    ES_RETURN_IF_ERROR(teller->Withdraw(90000, "wire transfer"));
    absl::Status saved = accounts_.Save(*teller);
    if (!eventstore::IsWrongExpectedVersion(saved)) {
      return absl::InternalError(
          absl::StrCat("expected a version conflict, got: ", saved.ToString()));
    }
    std::cout << "  the teller's stale save was refused (version "
              << teller->version() << ", the stream is at "
              << eventstore::GetWrongExpectedVersion(saved)->actual
              << "): nothing written, no alert queued\n";
    // Retried on the fresh state, the 900.00 no longer fit (1,000.00 -
    // 200.00): the command decides again, on what is true now.
    absl::StatusOr<std::unique_ptr<Account>> retried = accounts_.Update(
        Id("bob"), [](Account& a) { return a.Withdraw(90000, "wire"); });
    std::cout << "  retried on fresh state: "
              << (retried.ok() ? "done" : retried.status().message()) << "\n";
    return absl::OkStatus();
  }

  absl::Status FaultyImport() {
    std::cout << "3. a faulty import\n";
    // A deposit written straight to the log, to an account never opened.
    bank::v1::MoneyDeposited deposit;
    deposit.set_amount_cents(4200);
    deposit.set_memo("imported");
    std::vector<eventstore::EventData> events = {
        eventstore::EventData::From(deposit)};
    poisoned_ = events[0].id;
    ES_RETURN_IF_ERROR(store_
                           .Append(accounts_.StreamName(Id("carol")),
                                   eventstore::ExpectedVersion::NoStream(),
                                   events)
                           .status());
    std::cout << "  deposited " << Money(deposit.amount_cents()) << " to "
              << Id("carol") << ", which was never opened\n";
    return absl::OkStatus();
  }

  absl::Status ProjectAndRepair() {
    std::cout << "4. the balances projection\n";
    eventstore::ProjectionRunnerOptions options;
    options.max_attempts = 3;
    options.initial_backoff = absl::Milliseconds(10);
    options.worker_name = "bank-example";
    ES_ASSIGN_OR_RETURN(
        std::unique_ptr<eventstore::ProjectionRunner> runner,
        eventstore::ProjectionRunner::Create(store_, balances_, options));
    ES_ASSIGN_OR_RETURN(eventstore::ProjectionLag lag, runner->Lag());
    std::cout << "  behind by " << lag.events_behind << " events\n";
    ES_ASSIGN_OR_RETURN(eventstore::ProjectionRunResult result,
                        runner->RunOnce());
    std::cout << "  handled " << result.handled << " events, parked "
              << result.parked << ", " << result.checkpoints
              << " checkpoints\n";

    ES_ASSIGN_OR_RETURN(std::optional<eventstore::DeadLetter> letter,
                        store_.dead_letters().Get(runner->name(), poisoned_));
    if (!letter.has_value() ||
        letter->status != eventstore::DeadLetterStatus::kParked) {
      return absl::InternalError("the imported deposit was not parked");
    }
    std::cout << "  dead letter: " << letter->stream << " v" << letter->version
              << " (" << letter->event_type << "): " << letter->error << "\n";

    std::cout << "5. the fix\n";
    // Open the account (after the imported deposit), project the opening,
    // then replay the parked deposit.
    ES_RETURN_IF_ERROR(
        accounts_
            .Update(Id("carol"), [](Account& a) { return a.Open("Carol"); })
            .status());
    ES_ASSIGN_OR_RETURN(result, runner->RunOnce());
    ES_RETURN_IF_ERROR(runner->ReplayParked(poisoned_));
    ES_ASSIGN_OR_RETURN(letter,
                        store_.dead_letters().Get(runner->name(), poisoned_));
    if (!letter.has_value() ||
        letter->status != eventstore::DeadLetterStatus::kResolved) {
      return absl::InternalError("the replayed deposit is not resolved");
    }
    std::cout << "  replayed the parked deposit: resolved by "
              << letter->resolved_by << "\n";
    ES_ASSIGN_OR_RETURN(lag, runner->Lag());
    std::cout << "  behind by " << lag.events_behind << " events\n";
    return absl::OkStatus();
  }

  absl::Status PublishOutbox() {
    std::cout << "6. the outbox\n";
    eventstore::OutboxPublisherOptions options;
    options.worker_name = "bank-example";
    ES_ASSIGN_OR_RETURN(
        std::unique_ptr<eventstore::OutboxPublisher> publisher,
        eventstore::OutboxPublisher::Create(store_, sink_, options));
    ES_ASSIGN_OR_RETURN(eventstore::OutboxPublishResult result,
                        publisher->RunOnce());
    ES_ASSIGN_OR_RETURN(eventstore::OutboxStats stats, store_.outbox().Stats());
    std::cout << "  published " << result.published << ", pending "
              << stats.pending << "\n";
    // Published messages are kept for a while (for audits); trim them.
    ES_ASSIGN_OR_RETURN(
        int64_t deleted,
        store_.outbox().DeletePublishedOlderThan(absl::Hours(24 * 7)));
    std::cout << "  trimmed " << deleted
              << " messages published over a week ago\n";
    return absl::OkStatus();
  }

  absl::Status CheckReadModel() {
    std::cout << "7. read model vs aggregates\n";
    ES_ASSIGN_OR_RETURN(std::unique_ptr<eventstore::SqlTransaction> tx,
                        store_.BeginTransaction());
    bool all_match = true;
    for (const char* name : {"alice", "bob", "carol"}) {
      ES_ASSIGN_OR_RETURN(std::unique_ptr<Account> account,
                          accounts_.Load(Id(name)));
      ES_ASSIGN_OR_RETURN(eventstore::SqlRows rows,
                          tx->Query("SELECT balance_cents FROM bank_balances"
                                    " WHERE account_id = $1",
                                    {eventstore::SqlValue::Text(Id(name))}));
      const std::string projected = rows.empty() || !rows[0][0].has_value()
                                        ? "missing"
                                        : Money(std::stoll(*rows[0][0]));
      const bool match = projected == Money(account->balance_cents());
      all_match = all_match && match;
      std::cout << "  " << account->id() << " (" << account->owner()
                << "): " << Money(account->balance_cents()) << ", read model "
                << projected << (match ? "" : "  MISMATCH") << "\n";
    }
    if (!all_match) return absl::InternalError("the read model is wrong");
    // One alert: alice's car. The teller's rolled-back withdrawal queued
    // none.
    int alerts = 0;
    for (const std::string& account : sink_.sent()) {
      if (account == Id("bob")) {
        return absl::InternalError("an alert of a rolled-back save was sent");
      }
      if (account == Id("alice")) ++alerts;
    }
    if (alerts != 1) {
      return absl::InternalError(absl::StrCat("expected 1 alert for ",
                                              Id("alice"), ", sent ", alerts));
    }
    return absl::OkStatus();
  }

  EventStore& store_;
  const std::string run_;
  AggregateRepository<Account> accounts_;
  bank::BalancesProjection balances_;
  PrintingSink sink_;
  eventstore::Uuid poisoned_;
};

}  // namespace

int main(int argc, char** argv) {
  absl::StatusOr<std::unique_ptr<EventStore>> store =
      argc > 1 ? eventstore::OpenEventStore(argv[1])
      : std::getenv("EVENTSTORE_URL") != nullptr
          ? eventstore::OpenEventStore()
          : eventstore::OpenEventStore("sqlite:bank.db");
  if (!store.ok()) {
    std::cerr << "bank: cannot open the store: " << store.status() << "\n";
    return 1;
  }
  BankExample example(**store);
  absl::Status done = example.Run();
  if (!done.ok()) {
    std::cerr << "bank: " << done << "\n";
    return 1;
  }
  std::cout << "bank example: OK\n";
  return 0;
}
