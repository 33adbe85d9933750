import { join } from "node:path";
import Database from "better-sqlite3";
import { execa } from "execa";
import { expect, test } from "vitest";
import { scratchDir } from "../support/project.js";

const SQLITE = join(import.meta.dirname, "../../dist/lab/sqlite.js");
const MIGRATIONS = ["CREATE TABLE tokens (name TEXT PRIMARY KEY)"];

test("two commands opening a new laboratory database at once: the second finds it migrated instead of migrating it again", async () => {
  const file = join(await scratchDir("labtest-sqlite-"), "tokens.db");
  // The first command, between its look at the database's version and its migrations: it holds
  // the write lock, and the database is still at version 0.
  const first = new Database(file);
  try {
    first.exec("PRAGMA journal_mode = WAL");
    first.exec("BEGIN IMMEDIATE");
    const second = execa(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import { openDatabase } from ${JSON.stringify(SQLITE)};
         console.log("opening");
         openDatabase(${JSON.stringify(file)}, ${JSON.stringify(MIGRATIONS)}).close();
         console.log("opened");`,
      ],
      { reject: false },
    );
    await new Promise<void>((resolve, reject) => {
      second.stdout?.once("data", () => resolve());
      second.once("exit", () => reject(new Error("the second command ended before opening")));
    });
    // Time for the second to read version 0 and wait for the lock; if it is slower than that, it
    // reads the first's version and this test passes without testing the turn.
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const migration of MIGRATIONS) first.exec(migration);
    first.exec(`PRAGMA user_version = ${MIGRATIONS.length}`);
    first.exec("COMMIT");

    const opened = await second;
    expect(opened.stderr).toBe("");
    expect(opened.stdout).toBe("opening\nopened");
  } finally {
    first.close();
  }
});
