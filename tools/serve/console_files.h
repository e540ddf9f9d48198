// The web console's static files (tools/serve/web/), built into the binary
// by tools/serve/embed_files.cmake, which generates the definition of
// FindConsoleFile() from the files.
//
//   if (const ConsoleFile* file = FindConsoleFile(request.path)) {
//     response.set_content(std::string(file->body),
//                          std::string(file->content_type));
//   }
//
// The served paths are "/" (index.html), "/console.js" and "/console.css".

#ifndef EVENTSTORE_TOOLS_SERVE_CONSOLE_FILES_H_
#define EVENTSTORE_TOOLS_SERVE_CONSOLE_FILES_H_

#include <string_view>

namespace eventstore::tools {

struct ConsoleFile {
  // The URL path it is served at.
  std::string_view path;
  // Its Content-Type, with the charset.
  std::string_view content_type;
  // Its bytes, as in tools/serve/web/ when the binary was built.
  std::string_view body;
};

// The file served at `path`, or null. Static data: the pointer stays valid.
const ConsoleFile* FindConsoleFile(std::string_view path);

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_SERVE_CONSOLE_FILES_H_
