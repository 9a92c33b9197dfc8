// Text from outside (ids, host names, failure reasons sent by clients) made safe to log, store and
// send back: valid UTF-8 only, no control characters (no forged log lines, no terminal escapes),
// bounded in size. Protobuf string fields must hold valid UTF-8, so a reason that is stored and
// later shown by `baton status` must be made safe before it is stored, not only when printed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace baton {

// `text` with every byte that is not part of a printable character written as \xNN (control
// characters, DEL, bytes of invalid UTF-8) and backslashes doubled, so the original bytes can be
// told apart and recovered. The result holds at most `max_bytes` bytes (never a cut escape or a cut
// UTF-8 sequence); "…" marks a cut.
std::string SafeText(std::string_view text, size_t max_bytes = 512);

}  // namespace baton
