import { createHash, randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type Database from "better-sqlite3";
import { UsageError } from "../errors.js";
import { openDatabase, preparedStatements } from "../lab/sqlite.js";
import { AuthenticationError, type Authenticator, type Identity } from "../laboratory/identity.js";
import type { CreatedToken, TokenInfo } from "../laboratory/laboratory.js";
import type { Requests } from "../laboratory/protocol.js";

const PREFIX = "lt_";

const MIGRATIONS = [
  `CREATE TABLE tokens (
     name TEXT PRIMARY KEY,
     hash TEXT NOT NULL UNIQUE,
     scope TEXT NOT NULL,
     apps TEXT NOT NULL,
     created TEXT NOT NULL,
     expires TEXT,
     last_used TEXT,
     revoked TEXT
   )`,
];

const COLUMNS = "name, scope, apps, created, expires, last_used AS lastUsed, revoked";

type TokenRow = Omit<TokenInfo, "apps"> & { apps: string };

/**
 * The laboratory's tokens, in `<home>/tokens.db`: of each only the SHA-256 is kept, so the file
 * grants nothing to whoever reads it. A token is `lt_` and 32 random bytes (base64url): too much
 * entropy to guess, so an unsalted hash suffices and finds the token by an index.
 */
export class TokenStore implements Authenticator {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly statement: (sql: string) => Database.Statement;
  private readonly now: () => Date;

  constructor(home: string, options: { now?: () => Date } = {}) {
    mkdirSync(home, { recursive: true, mode: 0o711 });
    this.file = join(home, "tokens.db");
    this.db = openDatabase(this.file, MIGRATIONS);
    this.statement = preparedStatements(this.db);
    this.now = options.now ?? (() => new Date());
  }

  /** Makes a token; its plaintext is in the answer and nowhere else. A name is never used twice. */
  create({ name, scope, apps = [], expiresInSeconds }: Omit<Requests["tokenCreate"], "v">): CreatedToken {
    const token = PREFIX + randomBytes(32).toString("base64url");
    const now = this.now();
    const expires =
      expiresInSeconds === undefined ? null : new Date(now.getTime() + expiresInSeconds * 1000).toISOString();
    const inserted = this.statement(
      `INSERT OR IGNORE INTO tokens (name, hash, scope, apps, created, expires)
         VALUES (@name, @hash, @scope, @apps, @created, @expires)`,
    ).run({
      name,
      hash: hash(token),
      scope,
      apps: JSON.stringify(apps),
      created: now.toISOString(),
      expires,
    });
    if (inserted.changes === 0)
      throw new UsageError(`there is already a token named ${name}`, [
        {
          where: name,
          what: "token names are never reused, not even a revoked token's (the audit log names tokens)",
          fix: `choose another name (e.g. ${name}-2), or see labtest token list`,
        },
      ]);
    return { name, token, scope, apps, expires };
  }

  list(): TokenInfo[] {
    return (this.statement(`SELECT ${COLUMNS} FROM tokens ORDER BY name`).all() as TokenRow[]).map(info);
  }

  /** Revokes the token `name` (once: a revoked one keeps the time it was first revoked). */
  revoke(name: string): void {
    const known = this.statement("UPDATE tokens SET revoked = coalesce(revoked, ?) WHERE name = ?").run(
      this.now().toISOString(),
      name,
    );
    if (known.changes === 0)
      throw new UsageError(`there is no token named ${name}`, [
        {
          where: name,
          what: "no such token on this laboratory",
          fix: "see labtest token list for their names",
        },
      ]);
  }

  /** The identity `credential` stands for, its use recorded; never says the credential back. */
  async authenticate(credential: string | undefined): Promise<Identity> {
    if (!credential)
      throw new AuthenticationError(
        "no token was given",
        "log in (labtest login URL --token -), or set LABTEST_TOKEN; a token comes from labtest token create on the laboratory",
      );
    const row = this.statement(`SELECT ${COLUMNS} FROM tokens WHERE hash = ?`).get(hash(credential)) as
      | TokenRow
      | undefined;
    if (!row)
      throw new AuthenticationError(
        "the token is not one this laboratory knows",
        "check that it was copied whole, and that it was made on this laboratory (labtest token list there)",
      );
    const now = this.now();
    if (row.revoked !== null)
      throw new AuthenticationError(
        `token ${row.name} was revoked at ${row.revoked}`,
        "ask an administrator of the laboratory for a new token",
      );
    if (row.expires !== null && Date.parse(row.expires) <= now.getTime())
      throw new AuthenticationError(
        `token ${row.name} expired at ${row.expires}`,
        "ask an administrator of the laboratory for a new token",
      );
    this.statement("UPDATE tokens SET last_used = ? WHERE name = ?").run(now.toISOString(), row.name);
    const { name, scope, apps } = info(row);
    return { name, scope, apps };
  }

  close(): void {
    this.db.close();
  }
}

function hash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

function info(row: TokenRow): TokenInfo {
  return { ...row, apps: JSON.parse(row.apps) as string[] };
}
