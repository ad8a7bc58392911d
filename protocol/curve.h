#pragma once
// CurveZMQ keys: generating them, the files they live in, and putting them on sockets.
//
// Files are text, '#' starts a comment line, keys are Z85 (40 characters):
//   NAME.pub  one line: the public key
//   NAME.key  two lines: the public key, then the secret key (mode 0600)
//   a worker allow-list: one public key per line, optionally followed by a label
//     ("<key> build-host-7"); a .pub file is a valid allow-list of one, so `cat *.pub` makes one.
#include <filesystem>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "shared/result.h"

namespace testfarm::protocol {

struct KeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85
};

struct AllowedKey {
  std::string public_key;  // Z85
  std::string label;       // may be empty
};

// False when this libzmq was built without CURVE (libsodium).
bool CurveAvailable();

Result<KeyPair> GenerateKeyPair();

// Writes BASE.key (0600, created exclusively: an existing key is never overwritten) and BASE.pub.
// Returns the two paths.
Result<std::pair<std::filesystem::path, std::filesystem::path>> WriteKeyPair(
    const KeyPair& keys, const std::filesystem::path& base);

// Each reader names the file and the line of any problem: missing, unreadable, not Z85, a secret
// key that does not match its public key.
Result<KeyPair> ReadSecretKeyFile(const std::filesystem::path& path);
Result<std::string> ReadPublicKeyFile(const std::filesystem::path& path);
Result<std::vector<AllowedKey>> ReadAllowList(const std::filesystem::path& path);

// The coordinator's side: CURVE server with `keys`; connections are checked by the ZAP handler.
void MakeCurveServer(zmq::socket_t& socket, const KeyPair& keys);
// A worker's side: it talks only to the server whose public key is `server_public_key`.
void MakeCurveClient(zmq::socket_t& socket, const KeyPair& keys,
                     const std::string& server_public_key);

// The Z85 text of a 32-byte binary key (as a ZAP request carries it).
std::string Z85Of(std::string_view binary_key);

}  // namespace testfarm::protocol
