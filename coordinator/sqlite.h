#pragma once
// A small RAII wrapper over SQLite's C API: a connection, prepared statements and transactions,
// with errors as values (the message names the file and what failed).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "shared/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace testfarm::coordinator::sqlite {

class Statement;

class Database {
 public:
  // kImmutable: read-only, and the file is taken not to change while open (no locks, no WAL
  // index), for a database in a directory this process cannot write.
  enum class Mode { kReadWriteCreate, kReadOnly, kImmutable };
  // Opens (creating, in kReadWriteCreate) the database at `path`, waiting up to `busy_timeout`
  // for another connection's lock on every statement.
  static Result<Database> Open(const std::filesystem::path& path, Mode mode,
                               std::chrono::milliseconds busy_timeout);
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // Runs one or more statements that return no rows.
  Status Exec(const std::string& sql);
  Result<Statement> Prepare(const std::string& sql);
  // The extended result code of the last failure (SQLITE_CORRUPT, SQLITE_NOTADB, ...).
  int last_error() const { return last_error_; }
  const std::filesystem::path& path() const { return path_; }
  sqlite3* handle() const { return db_; }
  Error Fail(std::string_view what);  // "PATH: what: sqlite's message", noting last_error

 private:
  Database(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
  int last_error_ = 0;
};

class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQL's ?1, ?2...
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view value);
  Statement& BindNull(int index);
  // Steps once: true while a row is there, false when done; an error otherwise.
  Result<bool> Step();
  // Steps until done, for statements that return no rows; then resets for reuse.
  Status Run();
  void Reset();  // keeps the bindings

  int64_t Int(int column) const;
  std::string Text(int column) const;
  bool IsNull(int column) const;

 private:
  friend class Database;
  Statement(Database* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Database* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE (the write lock is taken now, waiting out the busy timeout) ... COMMIT; rolled
// back if destroyed uncommitted.
class Transaction {
 public:
  static Result<Transaction> Begin(Database& db);
  Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();
  Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_ = nullptr;
};

}  // namespace testfarm::coordinator::sqlite
