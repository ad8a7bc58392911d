#include "protocol/curve.h"

#include <fcntl.h>
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "shared/errno_text.h"
#include "shared/unique_fd.h"

namespace testfarm::protocol {

namespace {

constexpr std::size_t kZ85KeyChars = 40;

bool IsZ85Key(const std::string& text) {
  if (text.size() != kZ85KeyChars) return false;
  uint8_t decoded[32];
  return zmq_z85_decode(decoded, text.c_str()) != nullptr;
}

// The file's meaningful lines (not blank, not comments), each with its line number and split
// into whitespace-separated words.
struct Line {
  int number = 0;
  std::vector<std::string> words;
};

Result<std::vector<Line>> ReadLines(const std::filesystem::path& path, const char* what) {
  std::ifstream in(path);
  if (!in) {
    return Error{"cannot read " + std::string(what) + " " + path.string() + ": " +
                 ErrnoText(errno)};
  }
  std::vector<Line> lines;
  std::string text;
  int number = 0;
  while (std::getline(in, text)) {
    ++number;
    std::istringstream words(text);
    Line line{number, {}};
    for (std::string word; words >> word;) line.words.push_back(word);
    if (line.words.empty() || line.words.front().starts_with('#')) continue;
    lines.push_back(std::move(line));
  }
  if (in.bad()) {
    return Error{"cannot read " + std::string(what) + " " + path.string() + ": " +
                 ErrnoText(errno)};
  }
  return lines;
}

Error BadLine(const std::filesystem::path& path, int line, const std::string& why) {
  return Error{path.string() + ":" + std::to_string(line) + ": " + why};
}

Result<std::string> KeyOnLine(const std::filesystem::path& path, const Line& line,
                              const char* which) {
  const std::string& word = line.words.front();
  if (!IsZ85Key(word)) {
    return BadLine(path, line.number,
                   std::string("expected a ") + which + " key (40 Z85 characters), got '" +
                       (word.size() > 48 ? word.substr(0, 48) + "..." : word) + "'");
  }
  return word;
}

}  // namespace

bool CurveAvailable() {
  return zmq_has("curve") != 0;
}

Result<KeyPair> GenerateKeyPair() {
  char public_key[kZ85KeyChars + 1];
  char secret_key[kZ85KeyChars + 1];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return Error{std::string("cannot generate a CurveZMQ key pair: ") + zmq_strerror(zmq_errno())};
  }
  return KeyPair{public_key, secret_key};
}

Result<std::pair<std::filesystem::path, std::filesystem::path>> WriteKeyPair(
    const KeyPair& keys, const std::filesystem::path& base) {
  std::filesystem::path secret_path = base.string() + ".key";
  std::filesystem::path public_path = base.string() + ".pub";
  // Returns 0 or the errno of the failure.
  auto write = [](const std::filesystem::path& path, int flags, mode_t mode,
                  const std::string& text) -> int {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | flags, mode));
    if (!fd) return errno;
    std::size_t done = 0;
    while (done < text.size()) {
      ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno;
      done += static_cast<std::size_t>(n);
    }
    return 0;
  };
  std::string secret_text =
      "# testfarm CurveZMQ secret key: the public key, then the secret key. Keep it private.\n" +
      keys.public_key + "\n" + keys.secret_key + "\n";
  if (int error = write(secret_path, O_EXCL, 0600, secret_text); error != 0) {
    if (error == EEXIST) {
      return Error{secret_path.string() + " already exists; not overwriting a key"};
    }
    return Error{"cannot write " + secret_path.string() + ": " + ErrnoText(error)};
  }
  std::string public_text = "# testfarm CurveZMQ public key\n" + keys.public_key + "\n";
  if (int error = write(public_path, O_TRUNC, 0644, public_text); error != 0) {
    return Error{"cannot write " + public_path.string() + ": " + ErrnoText(error)};
  }
  return std::pair{secret_path, public_path};
}

Result<KeyPair> ReadSecretKeyFile(const std::filesystem::path& path) {
  auto lines = ReadLines(path, "key file");
  if (!lines) return lines.error();
  if (lines->size() != 2) {
    return Error{path.string() + ": expected a secret key file (`testfarm keygen`): the public " +
                 "key and the secret key on two lines, found " + std::to_string(lines->size()) +
                 " key line(s)"};
  }
  auto public_key = KeyOnLine(path, (*lines)[0], "public");
  if (!public_key) return public_key.error();
  auto secret_key = KeyOnLine(path, (*lines)[1], "secret");
  if (!secret_key) return secret_key.error();
  char derived[kZ85KeyChars + 1];
  if (zmq_curve_public(derived, secret_key->c_str()) != 0 || *public_key != derived) {
    return BadLine(path, (*lines)[1].number, "the secret key does not belong to the public key");
  }
  return KeyPair{*public_key, *secret_key};
}

Result<std::string> ReadPublicKeyFile(const std::filesystem::path& path) {
  auto lines = ReadLines(path, "public key file");
  if (!lines) return lines.error();
  if (lines->size() != 1) {
    return Error{path.string() + ": expected a public key file (NAME.pub from `testfarm keygen`):" +
                 " one key line, found " + std::to_string(lines->size())};
  }
  return KeyOnLine(path, lines->front(), "public");
}

Result<std::vector<AllowedKey>> ReadAllowList(const std::filesystem::path& path) {
  auto lines = ReadLines(path, "worker key list");
  if (!lines) return lines.error();
  std::vector<AllowedKey> keys;
  for (const Line& line : *lines) {
    auto key = KeyOnLine(path, line, "worker's public");
    if (!key) return key.error();
    std::string label;
    for (std::size_t i = 1; i < line.words.size(); ++i) {
      label += (label.empty() ? "" : " ") + line.words[i];
    }
    keys.push_back({*key, label});
  }
  if (keys.empty()) return Error{path.string() + ": no worker keys in the list"};
  return keys;
}

void MakeCurveServer(zmq::socket_t& socket, const KeyPair& keys) {
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
  socket.set(zmq::sockopt::zap_domain, "testfarm");
}

void MakeCurveClient(zmq::socket_t& socket, const KeyPair& keys,
                     const std::string& server_public_key) {
  socket.set(zmq::sockopt::curve_serverkey, server_public_key);
  socket.set(zmq::sockopt::curve_publickey, keys.public_key);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
}

std::string Z85Of(std::string_view binary_key) {
  if (binary_key.size() != 32) return {};
  char text[kZ85KeyChars + 1];
  zmq_z85_encode(text, reinterpret_cast<const uint8_t*>(binary_key.data()), 32);
  return text;
}

}  // namespace testfarm::protocol
