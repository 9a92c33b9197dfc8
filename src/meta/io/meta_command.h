// The `baton meta` command (docs/meta.md, "Meta-IO"):
//   baton meta prepare --input F [--input F2 ...] --out EPISODES --task-key COL --label COL
//                      [--dense a,b] [--sparse c,d] [--order-by COL] [--support-fraction 0.5]
//                      [--min-rows 2] [--max-support N] [--max-query N] [--seed N]
//                      [--errors PATH] [--format auto|csv|jsonl]
//   baton meta inspect EPISODES [--head 5] [--verify]
// Exit status: 0 done, 2 bad options or inputs (a missing column, an unknown format, a missing
// file; the message on stderr), 1 a failure while reading or writing.
#pragma once

#include <CLI/CLI.hpp>

namespace baton::meta {

// Adds the `meta` subcommand (with `prepare` and `inspect`) to `app`; when one runs it sets
// `exit_code`.
void AddMetaCommand(CLI::App& app, int& exit_code);

}  // namespace baton::meta
