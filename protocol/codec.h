#pragma once
// Encoding and strict, total decoding of messages. Decode never throws and never crashes: any
// byte string yields either a Message or a DecodeError.
#include <string>
#include <string_view>

#include "protocol/messages.h"
#include "shared/result.h"

namespace testfarm::protocol {

struct DecodeError {
  enum class Code {
    kBadHeader,     // frame 0 is not "testfarm/<n>"
    kWrongVersion,  // frame 0 names another version
    kOversized,     // frame larger than kMaxFrameBytes
    kMalformed,     // not valid msgpack, trailing bytes, too deep
    kNotAMap,       // valid msgpack but not a map
    kMissingType,   // no "type" key, or not a string
    kUnknownType,   // "type" names no message we know
    kBadField,      // a known field has the wrong type or an out-of-range value
    kMissingField,  // a required field is absent
  };
  Code code;
  std::string message;  // human-readable, names the field or the problem
};

const char* CodeName(DecodeError::Code code);

// Frame 1: the msgpack body.
std::string EncodeBody(const Message& message);

// Checks frame 0 and decodes frame 1.
std::variant<Message, DecodeError> Decode(std::string_view header, std::string_view body);

}  // namespace testfarm::protocol
