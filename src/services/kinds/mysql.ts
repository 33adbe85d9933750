import { createHash, randomBytes } from "node:crypto";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type mysql from "mysql2/promise";

/** mysql2, loaded on first use (see pg-client.ts). */
const client = async () => (await import("mysql2/promise")).default;

import { ProvisionError } from "../errors.js";
import type { AdminAccess, Tenant } from "../model.js";
import type { ServiceKindModule, TenantAdmin } from "./kind.js";
import { sqlTenancy } from "./sql.js";

/** Where the native server's root may connect from: its socket, and TCP on the loopback. */
const ADMIN_HOSTS = ["localhost", "127.0.0.1"];

/** Durability off for throwaway data: no log flush per commit, no doublewrite buffer. */
const EPHEMERAL_SETTINGS = ["--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0"];

/**
 * MariaDB and MySQL speak one protocol and one SQL for tenants; they differ in the official
 * image and in how it is told the root password. Natively both run Debian's MariaDB.
 */
function mysqlFamily(flavour: "mariadb" | "mysql"): ServiceKindModule {
  return {
    port: 3306,
    adminUser: "root",
    ...sqlTenancy("mysql"),
    // What MariaDB's and MySQL's clients read; the user they take from the account that runs them.
    clientEnv: (c) => ({
      MYSQL_HOST: c.host,
      MYSQL_TCP_PORT: String(c.port),
      MYSQL_PWD: c.password ?? "",
    }),
    // As the tenant, never root: a dump reads the tenant's views, which run its functions with
    // the rights of whoever reads them (a table swapped for such a view mid-dump runs as root).
    dump: ({ admin, run }, tenant) =>
      run(
        ["mariadb-dump", "mysqldump"],
        [
          "--single-transaction",
          "--routines",
          "--triggers",
          "--skip-lock-tables",
          "--no-tablespaces",
          `--host=${admin.host}`,
          `--port=${admin.port}`,
          `--user=${required(tenant).user}`,
          required(tenant).database,
        ],
        { env: { MYSQL_PWD: tenant.password ?? "" } },
      ),
    openAdmin: (access) => openAdmin(access, flavour),
    container: {
      repository: flavour,
      version: flavour === "mariadb" ? "11" : "8",
      dataDirectory: "/var/lib/mysql",
      adminEnvironment: (password) => ({ [`${flavour.toUpperCase()}_ROOT_PASSWORD`]: password }),
      command: ({ ephemeral }) => (ephemeral ? { cmd: EPHEMERAL_SETTINGS } : {}),
    },
    native: {
      debianPackage: "mariadb-server",
      programs: ["mariadb-install-db", "mariadbd"],
      account: "mysql",
      async initialize(context, run) {
        const install = () =>
          run(context.programs["mariadb-install-db"] as string, [
            "--no-defaults",
            `--datadir=${context.dataDirectory}`,
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
          ]);
        try {
          await install();
        } catch (error) {
          // Seen once in some hundreds of installs on a loaded machine (MariaDB 10.11): the
          // bootstrap fails deleting one of its own Aria temporary tables ("Error on delete of
          // '/tmp/#sql-temptable-….MAI'"). What it left is discarded and it runs once more.
          if (!String((error as Error).message).includes("#sql-temptable")) throw error;
          await emptyDirectory(context.dataDirectory);
          await install();
        }
      },
      serverArgs: (context) => ({
        program: context.programs.mariadbd as string,
        args: [
          "--no-defaults",
          `--datadir=${context.dataDirectory}`,
          `--port=${context.port}`,
          "--bind-address=127.0.0.1",
          `--socket=${socketPath(context.dataDirectory)}`,
          `--pid-file=${context.dataDirectory}/mariadbd.pid`,
          // Host names are never resolved, so 'root'@'127.0.0.1' is the administrator over TCP.
          "--skip-name-resolve",
          ...(context.ephemeral ? EPHEMERAL_SETTINGS : []),
        ],
      }),
      async afterFirstStart(context) {
        // A fresh data directory has a password-less root reachable only through the socket.
        const connection = await (await client()).createConnection({
          socketPath: socketPath(context.dataDirectory),
          user: "root",
        });
        try {
          // mariadb-install-db also makes root@::1 and root@<host name> without a password (and
          // anonymous users, in some versions): only the administrator's two accounts stay.
          const [others] = await connection.query(
            "SELECT User AS user, Host AS host FROM mysql.user WHERE User = '' OR (User = 'root' AND Host NOT IN (?))",
            [ADMIN_HOSTS],
          );
          for (const { user, host } of others as { user: string; host: string }[])
            await connection.query("DROP USER ?@?", [user, host]);
          for (const host of ADMIN_HOSTS) {
            await connection.query("CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?", [
              "root",
              host,
              context.adminPassword,
            ]);
            await connection.query("ALTER USER ?@? IDENTIFIED BY ?", ["root", host, context.adminPassword]);
            await connection.query("GRANT ALL ON *.* TO ?@? WITH GRANT OPTION", ["root", host]);
          }
        } finally {
          await connection.end();
        }
      },
    },
  };
}

/** The two servers of the family, as they name themselves. */
export type MysqlProduct = "MySQL" | "MariaDB";

/**
 * The oldest release of each that has what tenants are made with: CREATE USER IF NOT EXISTS and
 * ALTER USER (MySQL 5.7.6, MariaDB 10.1.3 and 10.2), DROP USER IF EXISTS (MySQL 5.7.8).
 */
const OLDEST: Record<MysqlProduct, string> = { MySQL: "5.7.8", MariaDB: "10.2" };

/** Which server and release answered SELECT VERSION() (`5.6.51-log`, `10.11.6-MariaDB-0+deb12u1`). */
export function serverVersion(answer: string): { product: MysqlProduct; version: string } {
  const product = /mariadb/i.test(answer) ? "MariaDB" : "MySQL";
  // MariaDB before 11 may prefix "5.5.5-", which old replication clients needed.
  const version = /^(?:5\.5\.5-(?=\d+\.\d+\.\d+-MariaDB))?(\d+(?:\.\d+)*)/i.exec(answer)?.[1] ?? answer;
  return { product, version };
}

/**
 * Whether `version` of `product` is older than labtest makes tenants on. A shorter version (an
 * image's tag, `5.7`) stands for the newest release it covers.
 */
export function olderThanSupported(product: MysqlProduct, version: string): boolean {
  const parts = version.split(".").map(Number);
  const oldest = OLDEST[product].split(".").map(Number);
  for (const [index, least] of oldest.entries()) {
    const part = parts[index] ?? Number.POSITIVE_INFINITY;
    if (part !== least) return part < least;
  }
  return false;
}

/** What check-config says of an image (`mysql:5.6`, or a repository and its `version`) the laboratory will refuse; null for any other. */
export function oldServerNote(reference: string, version: string): string | null {
  const name = reference.slice(reference.lastIndexOf("/") + 1).split(/[:@]/)[0];
  const product = IMAGE_PRODUCTS[name ?? ""];
  if (!product || !olderThanSupported(product, version)) return null;
  return `is ${product} ${version}, older than ${OLDEST[product]}, the oldest labtest makes tenants on: the laboratory refuses it (use mysql:5.7 or later, or mariadb)`;
}

const IMAGE_PRODUCTS: Record<string, MysqlProduct> = { mysql: "MySQL", mariadb: "MariaDB" };

export const mariadb = mysqlFamily("mariadb");
export const mysqlServer = mysqlFamily("mysql");

function socketPath(dataDirectory: string): string {
  return `${dataDirectory}/mariadbd.sock`;
}

/**
 * A database name as a GRANT target. In GRANT, `_` and `%` are wildcards: unescaped, a grant
 * on `app_a_b_db` would also reach `app_axb_db`, another experiment's database.
 */
function grantTarget(database: string): string {
  return `\`${database.replace(/`/g, "``").replace(/[_%\\]/g, "\\$&")}\`.*`;
}

async function openAdmin(access: AdminAccess, flavour: "mariadb" | "mysql"): Promise<TenantAdmin> {
  const settings = {
    host: access.host,
    port: access.port,
    user: access.user ?? "root",
    password: access.password ?? "",
    connectTimeout: 5000,
  };
  const mysql = await client();
  const pool = mysql.createPool({ ...settings, connectionLimit: 4 });
  try {
    const [rows] = await pool.query("SELECT VERSION() AS version");
    checkSupported((rows as { version: string }[])[0]?.version ?? "", access, flavour);
  } catch (error) {
    await pool.end();
    throw error;
  }
  return {
    async create(tenant, { copyFrom, connectionLimit = null } = {}) {
      const { database, user } = required(tenant);
      await pool.query("CREATE USER IF NOT EXISTS ?@'%' IDENTIFIED BY ?", [user, tenant.password]);
      // 0: no limit of the user's own. Root keeps the one connection MariaDB and MySQL hold back
      // beyond max_connections for administrators, so the laboratory gets in when tenants are many.
      await pool.query("ALTER USER ?@'%' IDENTIFIED BY ? WITH MAX_USER_CONNECTIONS ?", [
        user,
        tenant.password,
        connectionLimit ?? 0,
      ]);
      const [rows] = await pool.query("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", [
        database,
      ]);
      const existed = (rows as unknown[]).length > 0;
      if (!existed) {
        await pool.query("CREATE DATABASE ?? CHARACTER SET utf8mb4", [database]);
        if (copyFrom) await copyTables(pool, settings, required(copyFrom).database, database);
      }
      await pool.query(`GRANT ALL ON ${grantTarget(database)} TO ?@'%'`, [user]);
      if (existed) return "existed";
      return copyFrom ? "copied" : "created";
    },
    async drop(tenant) {
      const { database, user } = required(tenant);
      await pool.query("DROP DATABASE IF EXISTS ??", [database]);
      await pool.query("DROP USER IF EXISTS ?@'%', ?@'%'", [user, copierName(database)]);
    },
    async size(tenant) {
      // The server's own estimate for InnoDB (no table is read): ample for a status line.
      const [rows] = await pool.query(
        "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) AS bytes FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
        [required(tenant).database],
      );
      return { unit: "bytes", amount: Number((rows as { bytes: string | number }[])[0]?.bytes ?? 0) };
    },
    async load(tenant, script) {
      const { database, user } = required(tenant);
      const connection = await mysql.createConnection({
        ...settings,
        user,
        password: tenant.password ?? "",
        database,
        multipleStatements: true,
      });
      try {
        await connection.query(script);
      } finally {
        await connection.end();
      }
    },
    close: () => pool.end(),
  };
}

/** Refuses a server too old for the statements tenants are made with, before any is sent. */
function checkSupported(answer: string, access: AdminAccess, flavour: "mariadb" | "mysql"): void {
  const { product, version } = serverVersion(answer);
  if (!olderThanSupported(product, version)) return;
  throw new ProvisionError(`${product} ${version} at ${access.host}:${access.port} is too old for labtest`, [
    {
      where: `the ${flavour} server at ${access.host}:${access.port}`,
      what: `tenants are made with CREATE USER IF NOT EXISTS, ALTER USER … WITH MAX_USER_CONNECTIONS and DROP USER IF EXISTS, which need MySQL ${OLDEST.MySQL} or MariaDB ${OLDEST.MariaDB} or later`,
      fix: `run the service on MySQL 5.7.8 or later, or on MariaDB: its options.image (e.g. mysql:8, mariadb:11), or the laboratory's default in state at /services/docker/${flavour}/<app>`,
    },
  ]);
}

/**
 * MySQL has no database templates: the copy is made inside the server, table by table (with
 * indexes and data; foreign keys, views, triggers and routines are not copied). It is made by a
 * user of its own that may only read the source and fill the target, never by root: reading the
 * source runs the source tenant's code when a table is swapped for a view between the listing
 * and the copy, and such code runs with the rights of whoever reads.
 */
async function copyTables(
  admin: mysql.Pool,
  settings: mysql.ConnectionOptions,
  source: string,
  target: string,
): Promise<void> {
  const copier = copierName(target);
  const password = randomBytes(24).toString("base64url");
  // A copy cut short (the laboratory stopped) may have left its copier behind.
  await admin.query("DROP USER IF EXISTS ?@'%'", [copier]);
  await admin.query("CREATE USER ?@'%' IDENTIFIED BY ?", [copier, password]);
  try {
    await admin.query(`GRANT SELECT ON ${grantTarget(source)} TO ?@'%'`, [copier]);
    await admin.query(`GRANT CREATE, INSERT ON ${grantTarget(target)} TO ?@'%'`, [copier]);
    const connection = await (await client()).createConnection({ ...settings, user: copier, password });
    try {
      await connection.query("SET SESSION FOREIGN_KEY_CHECKS = 0");
      const [tables] = await connection.query(
        "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'",
        [source],
      );
      for (const { name } of tables as { name: string }[]) {
        await connection.query("CREATE TABLE ??.?? LIKE ??.??", [target, name, source, name]);
        await connection.query("INSERT INTO ??.?? SELECT * FROM ??.??", [target, name, source, name]);
      }
    } finally {
      await connection.end();
    }
  } finally {
    await admin.query("DROP USER IF EXISTS ?@'%'", [copier]);
  }
}

/** The copier of a target database: one per target, so a retry finds the one left behind. */
function copierName(target: string): string {
  return `labtest_copy_${createHash("sha256").update(target).digest("hex").slice(0, 16)}`;
}

function required(tenant: Tenant): { database: string; user: string } {
  if (!tenant.database || !tenant.user) throw new Error("a MySQL tenant needs a database and a user");
  return { database: tenant.database, user: tenant.user };
}

/** Removes what `directory` holds, keeping the directory (and its owner) itself. */
async function emptyDirectory(directory: string): Promise<void> {
  for (const entry of await readdir(directory))
    await rm(join(directory, entry), { recursive: true, force: true });
}
