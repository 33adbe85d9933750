import { randomBytes } from "node:crypto";
import type pg from "pg";
import { ident } from "./pg-client.js";

/** How many empty databases a communal server keeps ready (a dedicated one keeps none). */
export const SPARE_COUNT = 3;
const SPARE_PREFIX = "labtest_spare_";
/** SQLSTATE invalid_catalog_name: another command claimed that spare first. */
const INVALID_CATALOG_NAME = "3D000";
/**
 * GRANT, REVOKE and ALTER DATABASE … OWNER update a database's row without locking the database,
 * so two sessions changing one row at once fail with "tuple concurrently updated" (a refill's
 * REVOKE and another process's claim of that spare, say). Every such change takes this lock first,
 * inside its transaction; CREATE and DROP DATABASE, which cannot run in one, do not need it.
 */
export const LOCK_DATABASE_ROWS = "LOCK TABLE pg_catalog.pg_database IN SHARE ROW EXCLUSIVE MODE";

/**
 * Empty databases created ahead of need. CREATE DATABASE copies and syncs the whole template
 * (over 100 ms on ordinary disks); renaming a spare and handing it to the tenant's role takes a
 * few milliseconds, and the spare is replaced in the background.
 */
export interface SpareDatabases {
  /** Renames a spare to `database`; false when none is ready (the caller creates it then). */
  claim(database: string): Promise<boolean>;
  /** Tops the spares up in the background, one at a time. */
  refill(): void;
  /** Resolves once the background work is done. */
  settled(): Promise<void>;
}

export function spareDatabases(pool: pg.Pool, wanted: number): SpareDatabases {
  let filling: Promise<void> = Promise.resolve();

  async function spares(client: pg.Pool | pg.PoolClient = pool): Promise<string[]> {
    const { rows } = await client.query<{ datname: string }>(
      "SELECT datname FROM pg_catalog.pg_database WHERE pg_catalog.starts_with(datname, $1) ORDER BY oid",
      [SPARE_PREFIX],
    );
    return rows.map((r) => r.datname);
  }

  return {
    async claim(database) {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        await client.query(LOCK_DATABASE_ROWS);
        const [spare] = await spares(client);
        if (spare) await client.query(`ALTER DATABASE ${ident(spare)} RENAME TO ${ident(database)}`);
        await client.query("COMMIT");
        return spare !== undefined;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    refill() {
      filling = filling
        .then(async () => {
          if (wanted === 0) return;
          for (let count = (await spares()).length; count < wanted; count++) {
            const name = `${SPARE_PREFIX}${randomBytes(6).toString("hex")}`;
            await pool.query(`CREATE DATABASE ${ident(name)}`);
            try {
              await pool.query(`${LOCK_DATABASE_ROWS}; REVOKE ALL ON DATABASE ${ident(name)} FROM PUBLIC`);
            } catch (error) {
              // Claimed already: its tenant's REVOKE covers it.
              if ((error as { code?: string }).code !== INVALID_CATALOG_NAME) throw error;
            }
          }
        })
        // A failed refill only costs speed: the next tenant is created directly.
        .catch(() => undefined);
    },
    settled: () => filling,
  };
}
