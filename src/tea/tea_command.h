// The `baton tea` command: `baton tea align --data DIR --seeds N [...]`.
#pragma once

#include <CLI/CLI.hpp>

namespace baton::tea {

// Adds the `tea` subcommand (with `align`) to `app`. When it runs it sets exit_code: 0 on success,
// 2 on bad input (missing file, malformed line, id out of range, bad option; the message on stderr
// names the file and line), 1 on any other failure (e.g. --out not writable).
void AddTeaCommand(CLI::App& app, int& exit_code);

}  // namespace baton::tea
