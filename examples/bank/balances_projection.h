// BalancesProjection: the bank example's read model, a table of account
// balances kept in the store's own database.
//
// A TransactionalProjection: the runner hands each batch one SqlTransaction
// and saves the projection's checkpoint in it, so the table and the
// checkpoint commit together and every event is applied exactly once.
//
// A deposit or withdrawal on an account that has no row (its stream has no
// AccountOpened before it, say written by a faulty import) cannot be
// applied: the handler fails, the runner retries it and then parks it in
// the dead-letter store. Once the account is opened, ReplayParked() applies
// it.

#ifndef EVENTSTORE_EXAMPLES_BANK_BALANCES_PROJECTION_H_
#define EVENTSTORE_EXAMPLES_BANK_BALANCES_PROJECTION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bank/v1/accounts.pb.h"
#include "eventstore/recorded_event.h"
#include "eventstore/sql_transaction.h"
#include "eventstore/status_macros.h"
#include "projections/projection.h"

namespace bank {

// Account "alice" lives in the stream "account-alice".
inline constexpr char kAccountStreamPrefix[] = "account-";

class BalancesProjection : public eventstore::TransactionalProjection {
 public:
  // The read model's table. Plain SQL that SQLite and PostgreSQL both
  // accept; on PostgreSQL it lands in the store's schema.
  static absl::Status CreateTable(eventstore::SqlTransaction& tx) {
    return tx.Execute(
        "CREATE TABLE IF NOT EXISTS bank_balances ("
        " account_id TEXT PRIMARY KEY,"
        " owner TEXT NOT NULL,"
        " balance_cents BIGINT NOT NULL,"
        " transactions BIGINT NOT NULL)");
  }

  std::string name() const override { return "bank-balances"; }

  // Only these types are read; the lag counts only them too.
  std::vector<std::string> event_types() const override {
    return {v1::AccountOpened::descriptor()->full_name(),
            v1::MoneyDeposited::descriptor()->full_name(),
            v1::MoneyWithdrawn::descriptor()->full_name()};
  }

  absl::Status Handle(const eventstore::RecordedEvent& event,
                      eventstore::SqlTransaction& tx) override {
    if (!absl::StartsWith(event.stream, kAccountStreamPrefix)) {
      return absl::OkStatus();  // not an account
    }
    const std::string account =
        event.stream.substr(sizeof(kAccountStreamPrefix) - 1);
    if (event.type == v1::AccountOpened::descriptor()->full_name()) {
      ES_ASSIGN_OR_RETURN(v1::AccountOpened opened,
                          event.As<v1::AccountOpened>());
      return tx.Execute(
          "INSERT INTO bank_balances"
          " (account_id, owner, balance_cents, transactions)"
          " VALUES ($1, $2, 0, 0)",
          {eventstore::SqlValue::Text(account),
           eventstore::SqlValue::Text(opened.owner())});
    }
    int64_t change = 0;
    if (event.type == v1::MoneyDeposited::descriptor()->full_name()) {
      ES_ASSIGN_OR_RETURN(v1::MoneyDeposited deposited,
                          event.As<v1::MoneyDeposited>());
      change = deposited.amount_cents();
    } else {
      ES_ASSIGN_OR_RETURN(v1::MoneyWithdrawn withdrawn,
                          event.As<v1::MoneyWithdrawn>());
      change = -withdrawn.amount_cents();
    }
    ES_ASSIGN_OR_RETURN(
        eventstore::SqlRows rows,
        tx.Query(
            "SELECT balance_cents FROM bank_balances WHERE account_id = $1",
            {eventstore::SqlValue::Text(account)}));
    if (rows.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("no balance row for account '", account,
                       "': money moved before the account was opened"));
    }
    return tx.Execute(
        "UPDATE bank_balances SET balance_cents = balance_cents + $1,"
        " transactions = transactions + 1 WHERE account_id = $2",
        {eventstore::SqlValue::Int(change),
         eventstore::SqlValue::Text(account)});
  }

  // Rebuild(): cleared in the transaction that resets the checkpoint.
  absl::Status Reset(eventstore::SqlTransaction& tx) override {
    return tx.Execute("DELETE FROM bank_balances");
  }
};

}  // namespace bank

#endif  // EVENTSTORE_EXAMPLES_BANK_BALANCES_PROJECTION_H_
