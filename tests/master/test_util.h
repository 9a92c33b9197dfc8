// Helpers for master tests: temporary directories and small input files.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace baton::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/baton-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string WriteLines(const std::string& path, int lines, const std::string& prefix = "r") {
  std::ofstream out(path);
  for (int i = 0; i < lines; ++i) out << prefix << i << "\n";
  return path;
}

}  // namespace baton::testing
