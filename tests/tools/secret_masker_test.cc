// SecretMasker: whatever shape a credential-bearing argument has, what the
// tool prints never holds the secret.

#include "tools/secret_masker.h"

#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace eventstore::tools {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// What a message built around `arg` looks like once masked by a masker that
// learnt `arg`: the argument echoed, inside quotes, as libpq's "port", in
// a sentence.
// `port`: what libpq would take for the port of a URL without its '@' (then
// no password is ever sent, and only that text, or the whole argument, can
// come back in a message); empty when the secret itself can.
std::vector<std::string> EchoesOf(const std::string& arg,
                                  const std::string& secret,
                                  const std::string& port = "") {
  return {arg,
          absl::StrCat("The following argument was not expected: ", arg),
          absl::StrCat("url: '", arg, "' does not start with postgresql://"),
          absl::StrCat("invalid integer value \"", port.empty() ? secret : port,
                       "\" for connection option \"port\""),
          absl::StrCat("password authentication failed (",
                       port.empty() ? secret : port, ")"),
          absl::StrCat("{\"location\":\"", arg, "\"}")};
}

struct Shape {
  const char* arg;
  const char* secret;
};

TEST(SecretMaskerTest, UglyShapesNeverShowTheSecret) {
  const Shape kShapes[] = {
      {"postgresql://app:S3cret%21x@127.0.0.1:5432/db", "S3cret%21x"},
      {"postgresql://app:S3cret%21x@127.0.0.1:5432/db", "S3cret!x"},
      {"postgres:/app:hunter2@127.0.0.1:5432/db", "hunter2"},
      {"postgres:app:hunter2@127.0.0.1:5432/db", "hunter2"},
      {"postgresql//app:hunter2@127.0.0.1/db", "hunter2"},
      {"postgresql:///app:hunter2@127.0.0.1/db", "hunter2"},
      {"postgresql://app:hunter2127.0.0.1:5432/db", "hunter2127.0.0.1:5432"},
      {"postgresql://app:hunter2/db", "hunter2"},
      {"postgresql://app:hun/ter2@db/shop", "hun/ter2"},
      {"postgresql://app:p@ss@word@db/shop", "p@ss@word"},
      {"postgresql://app:pa:ss:wd@db/shop", "pa:ss:wd"},
      {"postgresql://user@db/shop?password=hunter2&schema=x", "hunter2"},
      {"postgresql://user@db/shop?PASSWORD=hunter2", "hunter2"},
      {"host=db password=hunter2 dbname=shop", "hunter2"},
      {"host=db password='hunter 2' dbname=shop", "hunter 2"},
      {"postgresql://app:%E2%82%AC%E2%82%ACuro@db/shop",
       "\xe2\x82\xac\xe2\x82\xac"
       "uro"},
      {"mysql://root:toor123@db/x", "toor123"},
      {"https://app:tok3n@example.invalid/x", "tok3n"},
      {"app:hunter2@db", "hunter2"},
      {"--to=postgresql://app:hunter2@db/shop", "hunter2"},
      {"postgresql://app:hunter2@[::1]:5432/db", "hunter2"},
      {"postgresql://app:hunter2@h1:5432,h2:5433/db", "hunter2"},
  };
  for (const Shape& shape : kShapes) {
    SCOPED_TRACE(shape.arg);
    SecretMasker masker;
    masker.AddArgument(shape.arg);
    for (const std::string& text : EchoesOf(shape.arg, shape.secret)) {
      const std::string masked = masker.Mask(text);
      EXPECT_THAT(masked, Not(HasSubstr(shape.secret))) << text;
      EXPECT_THAT(masked, HasSubstr(kMask)) << text;
    }
  }
}

TEST(SecretMaskerTest, WhatIsNotSecretStaysReadable) {
  SecretMasker masker;
  masker.AddArgument("postgresql://app:hunter2@db.internal:5432/shop");
  masker.AddArgument("sqlite:events.db");
  masker.AddArgument("order-42");
  masker.AddArgument("--by");
  masker.AddArgument("alice@example.com");
  EXPECT_EQ(masker.Mask("could not connect to db.internal:5432 (shop)"),
            "could not connect to db.internal:5432 (shop)");
  EXPECT_EQ(masker.Mask("postgresql://app:hunter2@db.internal:5432/shop"),
            "postgresql://app:***@db.internal:5432/shop");
  EXPECT_EQ(masker.Mask("stream 'order-42' of sqlite:events.db, by "
                        "alice@example.com"),
            "stream 'order-42' of sqlite:events.db, by alice@example.com");
  EXPECT_EQ(masker.Mask("2024-05-01T09:30:00.123456Z position 12/7"),
            "2024-05-01T09:30:00.123456Z position 12/7");
}

TEST(SecretMaskerTest, CredentialShapesAreMaskedWithoutBeingLearnt) {
  EXPECT_EQ(MaskCredentialShapes("to postgresql://u:pw@h/db failed"),
            "to postgresql://u:***@h/db failed");
  EXPECT_EQ(MaskCredentialShapes("conninfo 'host=h password=pw port=1'"),
            "conninfo 'host=h password=*** port=1'");
  EXPECT_EQ(MaskCredentialShapes("x?password=pw&schema=s"),
            "x?password=***&schema=s");
  EXPECT_EQ(MaskCredentialShapes("postgresql://u:***@h/db"),
            "postgresql://u:***@h/db");
}

TEST(SecretMaskerTest, EnvironmentSecretAndItsEncodings) {
  SecretMasker masker;
  masker.AddSecret("p@ss w0rd!");
  EXPECT_EQ(masker.Mask("a p@ss w0rd! b"), "a *** b");
  EXPECT_EQ(masker.Mask("a p%40ss%20w0rd%21 b"), "a *** b");
  EXPECT_EQ(masker.Mask("a p%40ss%20w0rd%21 b"), "a *** b");
}

// Generated URL shapes (the mistakes people make typing them), each with a
// secret drawn from characters URLs use; the secret must not survive in
// any message that echoes the argument.
TEST(SecretMaskerTest, GeneratedShapesNeverLeak) {
  std::mt19937 random(20261204);
  const std::vector<std::string> schemes = {
      "postgresql://", "postgres://", "postgresql:/", "postgres:",
      "postgresql//",  "postgresql:", "mysql://",     ""};
  const std::string alphabet =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
      "!$%&()*+,;=:@/?#[]~-._'\"";
  const auto pick = [&](size_t n) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(random);
  };
  int checked = 0;
  for (int i = 0; i < 3000; ++i) {
    // A secret of 4..16 characters that reads as one (starts with a
    // letter sequence no host, user or word below contains).
    std::string secret = "Zq";
    const size_t length = 2 + pick(15);
    for (size_t k = 0; k < length; ++k) {
      secret.push_back(alphabet[pick(alphabet.size())]);
    }
    const std::string scheme = schemes[pick(schemes.size())];
    const std::string host = std::vector<std::string>{
        "db", "127.0.0.1", "[::1]", "h1:5432,h2", ""}[pick(5)];
    const std::string port = pick(2) == 0 ? "" : ":5432";
    const std::string tail =
        std::vector<std::string>{"/shop", "/shop?schema=x", "", "/",
                                 "/db?connect_timeout_ms=5"}[pick(5)];
    std::string arg;
    switch (pick(5)) {
      case 0:  // well formed
        arg = absl::StrCat(scheme, "app:", secret, "@", host, port, tail);
        break;
      case 1:  // the '@' forgotten (with no scheme either, "app:x" is
               // no more a URL than a stream named "tenant:acme" is)
        if (scheme.empty()) continue;
        // An '@' in the secret makes it a URL with a (different) password.
        if (secret.find('@') != std::string::npos) continue;
        arg = absl::StrCat(scheme, "app:", secret, host, port, tail);
        break;
      case 2:  // a password= parameter
        arg = absl::StrCat(scheme, "app@", host, port,
                           "/shop?password=", secret, "&schema=x");
        break;
      case 3:  // no user
        arg = absl::StrCat(scheme, ":", secret, "@", host, port, tail);
        break;
      default:  // a libpq key=value string
        arg = absl::StrCat("host=", host, " password=", secret, " dbname=shop");
        break;
    }
    // A password= value ends at '&', a space or a quote: the secret is the
    // part up to there.
    std::string expected = secret;
    if (arg.find("password=") != std::string::npos) {
      expected = secret.substr(0, secret.find_first_of("& \t'\"`"));
      if (expected.size() < SecretMasker::kMinSecretLength + 1) continue;
    }
    // Without its '@', libpq reads "app:" as the host and the rest of the
    // authority as the port.
    std::string libpq_port;
    const size_t user = arg.find("app:");
    if (arg.find('@') == std::string::npos && user != std::string::npos) {
      libpq_port = arg.substr(user + 4);
      libpq_port = libpq_port.substr(0, libpq_port.find_first_of(",/?#"));
    }
    SecretMasker masker;
    masker.AddArgument(arg);
    for (const std::string& text : EchoesOf(arg, expected, libpq_port)) {
      const std::string masked = masker.Mask(text);
      ASSERT_THAT(masked, Not(HasSubstr(expected)))
          << "argument: " << arg << "\nmessage: " << text;
    }
    ++checked;
  }
  EXPECT_GT(checked, 2000);
}

TEST(MaskingStreamBufTest, MasksSecretsWrittenInPieces) {
  SecretMasker masker;
  masker.AddArgument("postgresql://app:hunter2@db/shop");
  std::ostringstream sink;
  {
    MaskingStreamBuf buf(sink.rdbuf(), &masker);
    std::ostream out(&buf);
    out << "error: "
        << "hun"
        << "ter2"
        << " refused\n";
    out << "progress\r"
        << "at hunt"
        << "er2" << std::flush;
    out << " tail without newline hunter2";
  }
  EXPECT_THAT(sink.str(), Not(HasSubstr("hunter2")));
  EXPECT_THAT(sink.str(), HasSubstr("error: *** refused\n"));
  EXPECT_THAT(sink.str(), HasSubstr("tail without newline ***"));
}

}  // namespace
}  // namespace eventstore::tools
