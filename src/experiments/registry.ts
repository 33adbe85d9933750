import { existsSync, mkdirSync, renameSync } from "node:fs";
import { dirname } from "node:path";
import type Database from "better-sqlite3";
import { openDatabase, preparedStatements } from "../lab/sqlite.js";
import type { Runtime } from "./runtimes/names.js";

/** An experiment as the laboratory records it. */
export interface ExperimentRow {
  app: string;
  name: string;
  branch: string;
  release: string;
  /** The subject of the release's commit, read when it was checked out ("" where unknown). */
  subject?: string;
  runtime: Runtime;
  /** creating: not yet answering; running: answering at its URL; failed: stopped by an error. */
  status: "creating" | "running" | "failed";
  /** The host name the router maps to it, and where the app listens. */
  host: string;
  port: number;
  /** The supervisor process (local runtime) or container (docker runtime). */
  handle: string;
  checkout: string;
  createdAt: string;
  updatedAt: string;
}

/** Schema versions in order; `user_version` records how many have run. */
const MIGRATIONS = [
  `CREATE TABLE experiments (
     app TEXT NOT NULL,
     name TEXT NOT NULL,
     branch TEXT NOT NULL,
     release TEXT NOT NULL,
     runtime TEXT NOT NULL,
     status TEXT NOT NULL,
     host TEXT NOT NULL,
     port INTEGER NOT NULL,
     handle TEXT NOT NULL,
     checkout TEXT NOT NULL,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     PRIMARY KEY (app, name)
   )`,
  "CREATE UNIQUE INDEX experiments_host ON experiments (host)",
  "ALTER TABLE experiments ADD COLUMN subject TEXT NOT NULL DEFAULT ''",
];

const COLUMNS = `app, name, branch, release, subject, runtime, status, host, port, handle, checkout,
  created_at AS createdAt, updated_at AS updatedAt`;

/** Whether `error` says that a registry's file is damaged (not a database, or pages that do not read). */
export function isDamaged(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  // Extended codes (SQLITE_CORRUPT_INDEX, …) say where the damage is.
  return code === "SQLITE_NOTADB" || code?.startsWith("SQLITE_CORRUPT") === true;
}

/**
 * The laboratory's registry of experiments: SQLite in its home, migrated on open. Several
 * processes (CLI commands, the router) share it; WAL lets them read while one writes. It is a
 * record, not the truth: a damaged file is set aside and a new one started, which the
 * experiments rebuild from what runs.
 */
export class ExperimentRegistry {
  private readonly db: Database.Database;
  private readonly statement: (sql: string) => Database.Statement;

  constructor(readonly file: string) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o711 });
    try {
      this.db = openDatabase(file, MIGRATIONS);
    } catch (error) {
      if (!isDamaged(error)) throw error;
      const aside = `${file}.damaged-${Date.now()}`;
      for (const suffix of ["", "-wal", "-shm"])
        if (existsSync(file + suffix)) renameSync(file + suffix, aside + suffix);
      this.db = openDatabase(file, MIGRATIONS);
    }
    this.statement = preparedStatements(this.db);
  }

  get(app: string, name: string): ExperimentRow | undefined {
    return this.statement(`SELECT ${COLUMNS} FROM experiments WHERE app = ? AND name = ?`).get(app, name) as
      | ExperimentRow
      | undefined;
  }

  byHost(host: string): ExperimentRow | undefined {
    return this.statement(`SELECT ${COLUMNS} FROM experiments WHERE host = ?`).get(host) as
      | ExperimentRow
      | undefined;
  }

  list(app?: string): ExperimentRow[] {
    const rows = app
      ? this.statement(`SELECT ${COLUMNS} FROM experiments WHERE app = ? ORDER BY app, name`).all(app)
      : this.statement(`SELECT ${COLUMNS} FROM experiments ORDER BY app, name`).all();
    return rows as ExperimentRow[];
  }

  /** Records a new experiment; false when one of that name (or host) exists already. */
  insert(row: ExperimentRow): boolean {
    const result = this.statement(
      `INSERT OR IGNORE INTO experiments (app, name, branch, release, subject, runtime, status, host, port, handle, checkout, created_at, updated_at)
         VALUES (@app, @name, @branch, @release, @subject, @runtime, @status, @host, @port, @handle, @checkout, @createdAt, @updatedAt)`,
    ).run({ subject: "", ...row });
    return result.changes === 1;
  }

  update(
    app: string,
    name: string,
    changes: Partial<Omit<ExperimentRow, "app" | "name" | "createdAt">>,
  ): void {
    const entries = Object.entries({ ...changes, updatedAt: new Date().toISOString() });
    const column = (key: string) => (key === "updatedAt" ? "updated_at" : key);
    this.statement(
      `UPDATE experiments SET ${entries.map(([key]) => `${column(key)} = @${key}`).join(", ")} WHERE app = @app AND name = @name`,
    ).run({ ...Object.fromEntries(entries), app, name });
  }

  remove(app: string, name: string): void {
    this.statement("DELETE FROM experiments WHERE app = ? AND name = ?").run(app, name);
  }

  close(): void {
    this.db.close();
  }
}
