import { chmodSync, closeSync, openSync } from "node:fs";
import Database from "better-sqlite3";

/**
 * Every better-sqlite3 object this process makes stays reachable until it exits: on Node 24,
 * collecting one outside a JavaScript context aborts the process (`Assertion failed: (env) !=
 * nullptr` in Node's ObjectWrap; WiseLibs/better-sqlite3#1515, closed without a fix). So
 * statements are prepared once per text (see `preparedStatements`), and nothing here prepares
 * one behind our back (`pragma()` and `transaction()` do).
 */
const kept = new Set<object>();

function keep<T extends object>(object: T): T {
  kept.add(object);
  return object;
}

/**
 * Opens a laboratory database (several processes share it: WAL lets them read while one
 * writes), checks every page, and runs the `migrations` it has not run yet (`user_version`
 * records how many have). The file is the laboratory's alone: mode 0600, which SQLite gives its
 * -wal and -shm files too.
 */
export function openDatabase(file: string, migrations: string[]): Database.Database {
  closeSync(openSync(file, "a", 0o600));
  chmodSync(file, 0o600);
  const db = keep(new Database(file, { timeout: 10_000 }));
  const value = (pragma: string) =>
    keep(db.prepare(`PRAGMA ${pragma}`))
      .pluck()
      .get();
  try {
    db.exec("PRAGMA journal_mode = WAL");
    // A file damaged past its first page opens without complaint: every page is read before it is trusted.
    if (value("quick_check") !== "ok")
      throw Object.assign(new Error(`${file} is damaged`), { code: "SQLITE_CORRUPT" });
    if ((value("user_version") as number) < migrations.length) {
      db.exec("BEGIN IMMEDIATE");
      try {
        // Read again under the write lock: another command opening the new file at once may
        // have migrated it while this one waited for the lock.
        const version = value("user_version") as number;
        for (const migration of migrations.slice(version)) db.exec(migration);
        db.exec(`PRAGMA user_version = ${migrations.length}`);
        db.exec("COMMIT");
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
    }
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/** The statement of an SQL text, prepared once for `db` and kept (see `kept`). */
export function preparedStatements(db: Database.Database): (sql: string) => Database.Statement {
  const statements = new Map<string, Database.Statement>();
  return (sql) => {
    let statement = statements.get(sql);
    if (!statement) {
      statement = keep(db.prepare(sql));
      statements.set(sql, statement);
    }
    return statement;
  };
}
