// SecretMasker: keeps credentials out of everything the `eventstore` tool
// prints. It learns the secrets from the raw command line (every argument,
// because when parsing fails nobody knows which one was the URL) and from
// the environment, whatever their shape: a well-formed URL's password, a
// mistyped URL's (`postgres:/app:pw@host`, `postgresql//app:pw@host`), a
// URL missing its `@` (`postgresql://app:pw/db`, where libpq would take
// "pw" for a port), `password=` values. Mask() then replaces each secret
// (as written, %-decoded, %-encoded, JSON-escaped), each argument that held
// one, and anything credential-shaped (`scheme://user:PW@`, `password=PW`)
// by "***".
//
//   SecretMasker masker;
//   for (int i = 1; i < argc; ++i) masker.AddArgument(argv[i]);
//   std::cerr << masker.Mask(message);
//
// MaskingStreamBuf applies a masker to a whole stream (the tool installs one
// on stderr and on stdout, tools/cli_support.h InstallOutputMasking).
//
// Thread safety: add everything first; Mask() is const and thread-safe.

#ifndef EVENTSTORE_TOOLS_SECRET_MASKER_H_
#define EVENTSTORE_TOOLS_SECRET_MASKER_H_

#include <streambuf>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace eventstore::tools {

// What replaces a secret.
inline constexpr char kMask[] = "***";

// The passwords `arg` seems to hold, as written in it (see the overview).
// Over-reports rather than under-reports: `app:pw` may come with `pw`.
std::vector<std::string> CredentialsIn(std::string_view arg);

// `text` with credential-shaped parts masked without knowing any secret:
// in each word holding an '@', the part between the first ':' after the
// scheme separator and the last '@' (`postgresql://app:***@db`), and every
// `password=` value.
std::string MaskCredentialShapes(std::string_view text);

class SecretMasker {
 public:
  // Learns the credentials in one command-line argument or environment
  // value (CredentialsIn); the argument itself is masked as a whole too.
  void AddArgument(std::string_view arg);
  // Learns a secret given as such (e.g. $PGPASSWORD).
  void AddSecret(std::string_view secret);

  // `text` with every learnt secret in each of its forms, and everything
  // credential-shaped, replaced by "***". Secrets shorter than
  // kMinSecretLength are masked only inside an argument or a URL (replacing
  // every "ab" in a message would garble it and hide nothing).
  std::string Mask(std::string_view text) const;

  bool empty() const { return secrets_.empty() && arguments_.empty(); }

  static constexpr size_t kMinSecretLength = 3;

 private:
  void Sort();

  // Each form of each secret, longest first.
  std::vector<std::string> secrets_;
  // Arguments that held a secret, and their masked forms, longest first.
  std::vector<std::pair<std::string, std::string>> arguments_;
};

// A streambuf that writes to `target` through `masker`, a line at a time
// (a line ends at '\n' or '\r', or where the stream is flushed), so that a
// secret written in pieces is still seen whole.
class MaskingStreamBuf : public std::streambuf {
 public:
  // Neither is owned; both must outlive this.
  MaskingStreamBuf(std::streambuf* target, const SecretMasker* masker)
      : target_(target), masker_(masker) {}
  ~MaskingStreamBuf() override;

 protected:
  int overflow(int c) override;
  std::streamsize xsputn(const char* s, std::streamsize n) override;
  int sync() override;

 private:
  // Masks and writes what is buffered.
  bool Drain();

  std::streambuf* const target_;
  const SecretMasker* const masker_;
  std::string line_;
};

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_SECRET_MASKER_H_
