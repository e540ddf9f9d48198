// Tests of the throwaway PostgreSQL server the PostgreSQL tests run on.

#include "tests/support/postgres_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libpq-fe.h"
#include "tests/support/server_reaper_check.h"
#include "tests/support/status_matchers.h"

namespace eventstore::test {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct PGconnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using Connection = std::unique_ptr<PGconn, PGconnDeleter>;

struct PGresultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, PGresultDeleter>;

// Connects to `url`, giving up after a few seconds.
absl::StatusOr<Connection> Connect(const std::string& url) {
  const char* separator = url.find('?') == std::string::npos ? "?" : "&";
  Connection conn(
      PQconnectdb(absl::StrCat(url, separator, "connect_timeout=5").c_str()));
  if (conn == nullptr) return absl::ResourceExhaustedError("PQconnectdb");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(PQerrorMessage(conn.get()));
  }
  return conn;
}

// Runs `sql` (no parameters) and returns the first column of its first row,
// or "" for a statement that returns no rows.
absl::StatusOr<std::string> Query(PGconn* conn, const char* sql) {
  Result result(PQexec(conn, sql));
  ExecStatusType status = PQresultStatus(result.get());
  if (status == PGRES_COMMAND_OK) return std::string();
  if (status != PGRES_TUPLES_OK) {
    return absl::InternalError(absl::StrCat(sql, ": ", PQerrorMessage(conn)));
  }
  if (PQntuples(result.get()) < 1) {
    return absl::NotFoundError(absl::StrCat(sql, ": no rows"));
  }
  return std::string(PQgetvalue(result.get(), 0, 0));
}

// One server with default options, shared by the tests that only look.
class PostgresServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<PostgresServer>> server =
        PostgresServer::Start(PostgresServerOptions());
    ASSERT_OK(server);
    server_ = std::move(server).value().release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr); }

  static PostgresServer* server_;
};

PostgresServer* PostgresServerTest::server_ = nullptr;

TEST_F(PostgresServerTest, AnswersSelectOne) {
  EXPECT_EQ(server_->url(), absl::StrCat("postgresql://postgres@127.0.0.1:",
                                         server_->port(), "/postgres"));
  ASSERT_OK_AND_ASSIGN(Connection conn, Connect(server_->url()));
  ASSERT_OK_AND_ASSIGN(std::string one, Query(conn.get(), "SELECT 1"));
  EXPECT_EQ(one, "1");
  ASSERT_OK_AND_ASSIGN(std::string user,
                       Query(conn.get(), "SELECT current_user"));
  EXPECT_EQ(user, "postgres");
}

TEST_F(PostgresServerTest, ListensOnLoopbackOnlyWithFastTestSettings) {
  ASSERT_OK_AND_ASSIGN(Connection conn, Connect(server_->url()));
  ASSERT_OK_AND_ASSIGN(std::string listen,
                       Query(conn.get(), "SHOW listen_addresses"));
  EXPECT_EQ(listen, "127.0.0.1");
  ASSERT_OK_AND_ASSIGN(std::string port, Query(conn.get(), "SHOW port"));
  EXPECT_EQ(port, std::to_string(server_->port()));
  ASSERT_OK_AND_ASSIGN(std::string sockets,
                       Query(conn.get(), "SHOW unix_socket_directories"));
  // The socket lives in dir() unless its path would be too long for
  // sockaddr_un (108 bytes); then there is none.
  const std::string socket =
      absl::StrCat(server_->dir(), "/.s.PGSQL.", server_->port());
  EXPECT_EQ(sockets, socket.size() < 108 ? server_->dir() : "");
  ASSERT_OK_AND_ASSIGN(std::string fsync, Query(conn.get(), "SHOW fsync"));
  EXPECT_EQ(fsync, "off");
  ASSERT_OK_AND_ASSIGN(std::string max_connections,
                       Query(conn.get(), "SHOW max_connections"));
  EXPECT_EQ(max_connections, "200");
  ASSERT_OK_AND_ASSIGN(std::string encoding,
                       Query(conn.get(), "SHOW server_encoding"));
  EXPECT_EQ(encoding, "UTF8");
  EXPECT_EQ(server_->log_path(), server_->dir() + "/server.log");
  EXPECT_TRUE(std::filesystem::exists(server_->log_path()));
}

TEST_F(PostgresServerTest, CreateDatabaseReturnsItsUrl) {
  ASSERT_OK_AND_ASSIGN(std::string url, server_->CreateDatabase("orders_1"));
  EXPECT_EQ(url, server_->DatabaseUrl("orders_1"));
  ASSERT_OK_AND_ASSIGN(Connection conn, Connect(url));
  ASSERT_OK_AND_ASSIGN(std::string name,
                       Query(conn.get(), "SELECT current_database()"));
  EXPECT_EQ(name, "orders_1");

  EXPECT_THAT(server_->CreateDatabase("orders_1"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("exists")));
  for (const char* bad : {"", "Orders", "1abc", "a-b", "x\"; DROP"}) {
    EXPECT_THAT(server_->CreateDatabase(bad),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
}

TEST(PostgresServerLifecycleTest, StopThenStartAgainKeepsDataAndPort) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PostgresServer> server,
                       PostgresServer::Start(PostgresServerOptions()));
  const int port = server->port();
  {
    ASSERT_OK_AND_ASSIGN(Connection conn, Connect(server->url()));
    ASSERT_OK(Query(conn.get(), "CREATE TABLE kept (v text)"));
    ASSERT_OK(Query(conn.get(), "INSERT INTO kept VALUES ('before')"));
  }

  ASSERT_OK(server->Stop());
  EXPECT_FALSE(server->running());
  EXPECT_THAT(Connect(server->url()), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_OK(server->Stop());  // Stopping a stopped server is a no-op.

  ASSERT_OK(server->StartAgain());
  EXPECT_TRUE(server->running());
  EXPECT_EQ(server->port(), port);
  EXPECT_THAT(server->StartAgain(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  {
    ASSERT_OK_AND_ASSIGN(Connection conn, Connect(server->url()));
    ASSERT_OK_AND_ASSIGN(std::string value,
                         Query(conn.get(), "SELECT v FROM kept"));
    EXPECT_EQ(value, "before");
  }

  // Restart() disconnects sessions and keeps data too.
  ASSERT_OK_AND_ASSIGN(Connection before, Connect(server->url()));
  ASSERT_OK(server->Restart());
  EXPECT_THAT(Query(before.get(), "SELECT 1"),
              StatusIs(absl::StatusCode::kInternal));
  ASSERT_OK_AND_ASSIGN(Connection after, Connect(server->url()));
  ASSERT_OK_AND_ASSIGN(std::string value,
                       Query(after.get(), "SELECT v FROM kept"));
  EXPECT_EQ(value, "before");
}

TEST(PostgresServerLifecycleTest,
     StartAgainFailsWhileAnotherProcessHasThePort) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PostgresServer> server,
                       PostgresServer::Start(PostgresServerOptions()));
  ASSERT_OK(server->Stop());

  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  struct sockaddr_in address;
  std::memset(&address, 0, sizeof(address));
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(server->port()));
  ASSERT_EQ(
      bind(fd, reinterpret_cast<struct sockaddr*>(&address), sizeof(address)),
      0)
      << std::strerror(errno);
  ASSERT_EQ(listen(fd, 1), 0);
  EXPECT_THAT(server->StartAgain(),
              StatusIs(absl::StatusCode::kInternal,
                       HasSubstr("Address already in use")));
  EXPECT_FALSE(server->running());
  close(fd);

  ASSERT_OK(server->StartAgain());
  ASSERT_OK(Connect(server->url()));
}

TEST(PostgresServerLifecycleTest, DestructorStopsServerAndRemovesDirectory) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PostgresServer> server,
                       PostgresServer::Start(PostgresServerOptions()));
  const std::string dir = server->dir();
  const std::string url = server->url();
  EXPECT_TRUE(std::filesystem::is_directory(server->data_dir()));
  EXPECT_THAT(server->data_dir(), StartsWith(dir + "/"));
  ASSERT_OK(Connect(url));

  server.reset();
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_THAT(Connect(url), StatusIs(absl::StatusCode::kUnavailable));
}

// A process killed with its server up (a crash, ctest's timeout, a
// benchmark's fatal error) leaves neither the server nor its folder: the
// harness's reaper stops the postmaster named in postmaster.pid.
TEST(PostgresServerLifecycleTest, KilledOwnerLeavesNoServerBehind) {
  ExpectKilledOwnerLeavesNothing("postgres", absl::Seconds(120));
}

TEST(PostgresServerOptionsTest, DurableMaxConnectionsAndExtraSettings) {
  PostgresServerOptions options;
  options.durable = true;
  options.max_connections = 20;
  options.extra_settings = {"work_mem=8MB", "application_name=it's \\ fine"};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PostgresServer> server,
                       PostgresServer::Start(options));
  ASSERT_OK_AND_ASSIGN(Connection conn, Connect(server->url()));
  ASSERT_OK_AND_ASSIGN(std::string fsync, Query(conn.get(), "SHOW fsync"));
  EXPECT_EQ(fsync, "on");
  ASSERT_OK_AND_ASSIGN(std::string commit,
                       Query(conn.get(), "SHOW synchronous_commit"));
  EXPECT_EQ(commit, "on");
  ASSERT_OK_AND_ASSIGN(std::string max_connections,
                       Query(conn.get(), "SHOW max_connections"));
  EXPECT_EQ(max_connections, "20");
  ASSERT_OK_AND_ASSIGN(std::string work_mem,
                       Query(conn.get(), "SHOW work_mem"));
  EXPECT_EQ(work_mem, "8MB");
  ASSERT_OK_AND_ASSIGN(
      std::string name,
      Query(
          conn.get(),
          "SELECT reset_val FROM pg_settings WHERE name = 'application_name'"));
  EXPECT_EQ(name, "it's \\ fine");
}

TEST(PostgresServerOptionsTest, BadSettingFailsWithTheServerLog) {
  PostgresServerOptions options;
  options.extra_settings = {"no_such_setting=1"};
  absl::StatusOr<std::unique_ptr<PostgresServer>> server =
      PostgresServer::Start(options);
  EXPECT_THAT(server, StatusIs(absl::StatusCode::kInternal,
                               HasSubstr("\"no_such_setting\"")));

  options.extra_settings = {"no equals sign"};
  EXPECT_THAT(PostgresServer::Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options.extra_settings = {};
  options.max_connections = 0;
  EXPECT_THAT(PostgresServer::Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SharedPostgresTest, UrlWorksAndIsStable) {
  ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
  ASSERT_OK_AND_ASSIGN(std::string again, SharedPostgresUrl());
  EXPECT_EQ(url, again);
  ASSERT_OK_AND_ASSIGN(Connection conn, Connect(url));
  ASSERT_OK_AND_ASSIGN(std::string one, Query(conn.get(), "SELECT 1"));
  EXPECT_EQ(one, "1");

  const char* env = std::getenv("EVENTSTORE_TEST_PG_URL");
  if (env != nullptr && env[0] != '\0') {
    EXPECT_EQ(url, env);
    EXPECT_THAT(SharedPostgresServer(),
                StatusIs(absl::StatusCode::kFailedPrecondition));
  } else {
    ASSERT_OK_AND_ASSIGN(PostgresServer * server, SharedPostgresServer());
    EXPECT_EQ(server->url(), url);
    EXPECT_TRUE(server->running());
  }
}

}  // namespace
}  // namespace eventstore::test
