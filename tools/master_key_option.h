// --master-key-file: reading encrypted events (crypto-shredding,
// docs/lifecycle.md) through an EncryptedEventStore, for the commands that
// print events (`read`, `tail`, `dlq show`, `serve`).
//
//   std::string key_file;
//   AddMasterKeyFileOption(*cmd, key_file);
//   ...
//   ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> view,
//                       DecryptingView(store, key_file));
//   EventStore& reading = view != nullptr ? *view : store;
//
// Without a key, an encrypted event prints as sealed ("payload_state":
// "encrypted") and one whose subject was forgotten as forgotten
// (tools/json_renderer.h). The key's text is never printed: once read, it
// is added to the process's SecretMasker.

#ifndef EVENTSTORE_TOOLS_MASTER_KEY_OPTION_H_
#define EVENTSTORE_TOOLS_MASTER_KEY_OPTION_H_

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "eventstore/event_store.h"

namespace eventstore::tools {

// The environment variable naming the master key file when no
// --master-key-file is given.
inline constexpr char kMasterKeyFileEnvironmentVariable[] =
    "EVENTSTORE_MASTER_KEY_FILE";

// True when this build has eventstore::crypto (EVENTSTORE_WITH_CRYPTO).
bool CryptoBuiltIn();

// The message of a crypto command or option in a build without it.
std::string CryptoNotBuiltMessage();

// Adds --master-key-file FILE.
CLI::Option* AddMasterKeyFileOption(CLI::App& cmd, std::string& path);

// `given` when not empty, else $EVENTSTORE_MASTER_KEY_FILE (empty when
// unset).
std::string ResolveMasterKeyFile(const std::string& given);

// An EncryptedEventStore over `store` (which must outlive it) with the
// master key in the file ResolveMasterKeyFile(key_file) names; null when no
// file is named. Errors name the file, never its content: kNotFound when it
// does not exist, kInvalidArgument when it holds no key, kFailedPrecondition
// when this build has no crypto (CryptoNotBuiltMessage).
absl::StatusOr<std::unique_ptr<EventStore>> DecryptingView(
    EventStore& store, const std::string& key_file);

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_MASTER_KEY_OPTION_H_
