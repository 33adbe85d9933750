import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from "node:fs";
import { readFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type Database from "better-sqlite3";
import { execa } from "execa";
import { isValidName } from "../config/names.js";
import { UsageError } from "../errors.js";
import { openDatabase, preparedStatements } from "../lab/sqlite.js";
import { AuthenticationError, type Identity } from "../laboratory/identity.js";
import type { Scope } from "../laboratory/wire.js";

/**
 * The laboratory's named SSH keys (Dokku's idea): each is a line of the laboratory user's
 * `authorized_keys` whose forced command is `labtest serve --stdio --identity NAME`, so a
 * connection with that key can only speak labtest's protocol (see stdio.ts), as the identity
 * recorded here with its scope and apps. Lines labtest did not write are kept as they are.
 */

/** A key as `lab keys` lists it. */
export interface SshKey {
  name: string;
  /** `SHA256:…`, as ssh-keygen -l and sshd's log say it. */
  fingerprint: string;
  scope: Scope;
  /** The apps it may touch; empty: every app. */
  apps: string[];
  /** ISO 8601. */
  added: string;
}

/** A public key as read from its file: its type and base64 blob (its comment is ours to set). */
export interface PublicKey {
  type: string;
  blob: string;
  fingerprint: string;
}

const MIGRATIONS = [
  `CREATE TABLE ssh_keys (
     name TEXT PRIMARY KEY,
     fingerprint TEXT NOT NULL UNIQUE,
     type TEXT NOT NULL,
     blob TEXT NOT NULL,
     scope TEXT NOT NULL,
     apps TEXT NOT NULL,
     added TEXT NOT NULL
   )`,
];

/** A key as stored: also its type and blob, to write its line. */
type StoredKey = SshKey & { type: string; blob: string };
type KeyRow = Omit<StoredKey, "apps"> & { apps: string };

/** The comment that marks a line of authorized_keys as labtest's, and names its key. */
const MARK = "labtest:";
const KEY_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/i;
/** `labtest` as the forced command runs it: the package's bin, from src/server or dist/server alike. */
const LABTEST_JS = fileURLToPath(new URL("../../bin/labtest.js", import.meta.url));

export interface SshKeysOptions {
  /** The laboratory's home: the keys' database is `<home>/ssh-keys.db`, and the forced command serves it. */
  home: string;
  /** The laboratory user's authorized_keys (~/.ssh/authorized_keys of the user running labtest). */
  authorizedKeys: string;
}

/**
 * The keys of the laboratory user, in `<home>/ssh-keys.db` and mirrored into its authorized_keys:
 * each change rewrites the file while the database is locked, so two `lab add-key` at once both land.
 */
export class SshKeys {
  private readonly db: Database.Database;
  private readonly statement: (sql: string) => Database.Statement;

  constructor(private readonly options: SshKeysOptions) {
    mkdirSync(options.home, { recursive: true, mode: 0o711 });
    this.db = openDatabase(join(options.home, "ssh-keys.db"), MIGRATIONS);
    this.statement = preparedStatements(this.db);
  }

  /** Records `key` as `name` and writes its line; refuses a name or a key already there. */
  add(name: string, key: PublicKey, grant: { scope: Scope; apps: string[] }): SshKey {
    checkName(name);
    for (const app of grant.apps)
      if (!isValidName(app))
        throw new UsageError(`${app} is not an app name`, [
          { where: "--app", what: app, fix: "name an app as its configuration's app_name says it" },
        ]);
    return this.changing(() => {
      const sameName = this.row("name", name);
      if (sameName)
        throw new UsageError(`there is already a key named ${name}`, [
          {
            where: name,
            what: `added ${sameName.added}`,
            fix: `choose another name, or labtest lab remove-key ${name} first`,
          },
        ]);
      const sameKey = this.row("fingerprint", key.fingerprint);
      if (sameKey)
        throw new UsageError(`this key is already the laboratory's, as ${sameKey.name}`, [
          {
            where: key.fingerprint,
            what: `added ${sameKey.added} as ${sameKey.name}`,
            fix: `remove ${sameKey.name} first to add it again with another scope`,
          },
        ]);
      const foreign = this.foreignLines().find((line) => line.split(/\s+/).includes(key.blob));
      if (foreign !== undefined)
        throw new UsageError("this key is already in the laboratory user's authorized_keys", [
          {
            where: this.options.authorizedKeys,
            what: "a line that is not this laboratory's (yours, or another laboratory's of this user) has it: sshd would use whichever line comes first",
            fix: "remove that line first, or use another key",
          },
        ]);
      const added: SshKey = { name, fingerprint: key.fingerprint, ...grant, added: new Date().toISOString() };
      this.statement(
        `INSERT INTO ssh_keys (name, fingerprint, type, blob, scope, apps, added)
           VALUES (@name, @fingerprint, @type, @blob, @scope, @apps, @added)`,
      ).run({ ...added, type: key.type, blob: key.blob, apps: JSON.stringify(added.apps) });
      return added;
    });
  }

  list(): SshKey[] {
    return this.rows().map(({ type: _type, blob: _blob, ...key }) => key);
  }

  /** Removes the key `name` and its line. */
  remove(name: string): SshKey {
    return this.changing(() => {
      const row = this.row("name", name);
      if (!row)
        throw new UsageError(`there is no key named ${name}`, [
          {
            where: name,
            what: "no such key on this laboratory",
            fix: "see labtest lab keys for their names",
          },
        ]);
      this.statement("DELETE FROM ssh_keys WHERE name = ?").run(name);
      const { type: _type, blob: _blob, ...key } = row;
      return key;
    });
  }

  /** Who a connection with the key `name` is: refused when the key is gone (its line may linger). */
  identity(name: string): Identity {
    const row = this.row("name", name);
    if (!row)
      throw new AuthenticationError(
        `the SSH key ${name} is not one this laboratory knows (any longer)`,
        "ask an administrator of the laboratory to add your key (labtest lab add-key)",
      );
    return { name: row.name, scope: row.scope, apps: row.apps };
  }

  close(): void {
    this.db.close();
  }

  /** Runs `change` and rewrites authorized_keys from the result, all under the database's write lock. */
  private changing<T>(change: () => T): T {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const result = change();
      this.writeAuthorizedKeys();
      this.db.exec("COMMIT");
      return result;
    } catch (error) {
      this.db.exec("ROLLBACK");
      throw error;
    }
  }

  private row(column: "name" | "fingerprint", value: string): StoredKey | undefined {
    const row = this.statement(`SELECT * FROM ssh_keys WHERE ${column} = ?`).get(value) as KeyRow | undefined;
    return row && stored(row);
  }

  private rows(): StoredKey[] {
    return (this.statement("SELECT * FROM ssh_keys ORDER BY name").all() as KeyRow[]).map(stored);
  }

  /**
   * The lines of authorized_keys that are not this laboratory's: the user's own, comments and
   * blank lines, and those of another laboratory (another home) the same user runs.
   */
  private foreignLines(): string[] {
    let text = "";
    try {
      text = readFileSync(this.options.authorizedKeys, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    const lines = text.split("\n");
    if (lines.at(-1) === "") lines.pop();
    // A line of this laboratory's is marked, and its forced command serves this home.
    const serving = forcedCommandText(` --home ${shellWord(this.options.home)} --identity `);
    return lines.filter((line) => !(isMarked(line) && line.includes(serving)));
  }

  /**
   * Writes the others' lines, then one per key, to a new file renamed over the old one: sshd
   * never reads half a file. ~/.ssh 0700 and the file 0600, the user's own, as StrictModes wants.
   */
  private writeAuthorizedKeys(): void {
    const file = this.options.authorizedKeys;
    const lines = [...this.foreignLines(), ...this.rows().map((row) => this.line(row))];
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    chmodSync(dirname(file), 0o700);
    const temporary = `${file}.labtest-${process.pid}`;
    const fd = openSync(temporary, "w", 0o600);
    try {
      writeSync(fd, lines.map((line) => `${line}\n`).join(""));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, file);
  }

  /** `command="…",restrict TYPE BLOB labtest:NAME`: restrict forbids forwarding, agents, X11 and a pty. */
  private line(row: StoredKey): string {
    const command = [
      process.execPath,
      LABTEST_JS,
      "serve",
      "--stdio",
      "--home",
      this.options.home,
      "--identity",
      row.name,
    ]
      .map(shellWord)
      .join(" ");
    return `command="${forcedCommandText(command)}",restrict ${row.type} ${row.blob} ${MARK}${row.name}`;
  }
}

/**
 * The keys of the user running labtest, the laboratory user: its authorized_keys is where sshd
 * looks by default, ~/.ssh of its home in the password database (not $HOME, which sudo may keep).
 */
export function laboratoryUserKeys(home: string): SshKeys {
  return new SshKeys({ home, authorizedKeys: join(userInfo().homedir, ".ssh", "authorized_keys") });
}

/** The key a public key file holds, checked by ssh-keygen (run without a shell). */
export async function readPublicKey(file: string): Promise<PublicKey> {
  const refused = (what: string) =>
    new UsageError(`${file} is not a public key file`, [
      { where: file, what, fix: "give the .pub file of the key (ssh-keygen -y -f KEY > KEY.pub makes one)" },
    ]);
  const text = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw refused(`cannot be read (${error.code ?? error.message})`);
  });
  const lines = text.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("#"));
  const match =
    lines.length === 1 ? /^((?:ssh|ecdsa|sk)-\S+) ([A-Za-z0-9+/]+=*)(?:\s.*)?$/.exec(lines[0] ?? "") : null;
  if (!match?.[1] || !match[2])
    throw refused(
      lines.length > 1
        ? `it holds ${lines.length} lines: one key at a time`
        : "it holds no line TYPE BASE64 [COMMENT]",
    );
  const checked = await execa("ssh-keygen", ["-l", "-f", file], { reject: false });
  const fingerprint = /\s(SHA256:\S+)\s/.exec(checked.stdout)?.[1];
  if (checked.exitCode !== 0 || !fingerprint)
    throw refused(`ssh-keygen does not read it: ${(checked.stderr || checked.stdout).trim()}`);
  return { type: match[1], blob: match[2], fingerprint };
}

function stored(row: KeyRow): StoredKey {
  return { ...row, apps: JSON.parse(row.apps) as string[] };
}

/** Whether labtest wrote `line` (for a key of whichever laboratory). */
function isMarked(line: string): boolean {
  return line.startsWith('command="') && (line.trimEnd().split(/\s+/).at(-1) ?? "").startsWith(MARK);
}

/** A command as the command="…" option of authorized_keys holds it: backslashes and quotes escaped. */
function forcedCommandText(command: string): string {
  return command.replaceAll("\\", "\\\\").replaceAll('"', '\\"');
}

function checkName(name: string): void {
  if (!KEY_NAME.test(name))
    throw new UsageError(`${name} cannot name a key`, [
      {
        where: "NAME",
        what: "a key's name is letters, digits, '.', '_' and '-', starting with a letter or digit, 63 at most",
        fix: "name it after its person or machine, e.g. alice-laptop or ci",
      },
    ]);
}

/** A word as the login shell (which sshd runs the forced command with) reads it back. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
