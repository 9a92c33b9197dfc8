// Writing user bytes into JSON (output rows and error rows) without losing or merging any.
// JSON text is UTF-8, but keys and file names come from user data and may hold any bytes:
//   - a field whose value is valid UTF-8 is written as "NAME":"<the string, JSON-escaped>";
//   - any other value is written as "NAME_base64":"<standard base64 (RFC 4648, padded) of its
//     bytes>" instead, so that two different byte strings never become the same JSON value
//     (replacing bad bytes with U+FFFD would merge "k\xff" and "k\xfe").
// Diagnostic text (error messages) is made readable instead: each byte that is not part of valid
// UTF-8 becomes the four characters \xHH.
#pragma once

#include <string>
#include <string_view>

namespace baton::infer {

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(std::string_view s);

// Standard base64 with padding.
std::string Base64(std::string_view bytes);

// Appends `"s"` with JSON escapes. `s` must be valid UTF-8.
void AppendJsonString(std::string_view s, std::string* out);

// Appends "name":"value" or, when `value` is not valid UTF-8, "name_base64":"<base64>".
void AppendJsonBytesField(std::string_view name, std::string_view value, std::string* out);

// `s` with every byte that is not part of valid UTF-8 written as \xHH (for messages).
std::string ReadableText(std::string_view s);

}  // namespace baton::infer
