import type mysql from "mysql2/promise";

/** mysql2, loaded on first use (see postgresql.ts). */
const client = async () => (await import("mysql2/promise")).default;

import type { AdminAccess, Tenant } from "../model.js";
import type { ServiceKindModule, TenantAdmin } from "./kind.js";
import { sqlTenancy } from "./sql.js";

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
    dump: ({ admin, run }, tenant) =>
      run(
        ["mariadb-dump", "mysqldump"],
        [
          "--single-transaction",
          "--routines",
          "--triggers",
          "--skip-lock-tables",
          `--host=${admin.host}`,
          `--port=${admin.port}`,
          `--user=${admin.user ?? "root"}`,
          required(tenant).database,
        ],
        { env: { MYSQL_PWD: admin.password ?? "" } },
      ),
    openAdmin,
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
        await run(context.programs["mariadb-install-db"] as string, [
          "--no-defaults",
          `--datadir=${context.dataDirectory}`,
          "--auth-root-authentication-method=normal",
          "--skip-test-db",
        ]);
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
          const [anonymous] = await connection.query(
            "SELECT User AS user, Host AS host FROM mysql.user WHERE User = ''",
          );
          for (const { user, host } of anonymous as { user: string; host: string }[])
            await connection.query("DROP USER ?@?", [user, host]);
          for (const host of ["localhost", "127.0.0.1"]) {
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

async function openAdmin(access: AdminAccess): Promise<TenantAdmin> {
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
    await pool.query("SELECT 1");
  } catch (error) {
    await pool.end();
    throw error;
  }
  return {
    async create(tenant, { copyFrom } = {}) {
      const { database, user } = required(tenant);
      await pool.query("CREATE USER IF NOT EXISTS ?@'%' IDENTIFIED BY ?", [user, tenant.password]);
      await pool.query("ALTER USER ?@'%' IDENTIFIED BY ?", [user, tenant.password]);
      const [rows] = await pool.query("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", [
        database,
      ]);
      const existed = (rows as unknown[]).length > 0;
      if (!existed) {
        await pool.query("CREATE DATABASE ?? CHARACTER SET utf8mb4", [database]);
        if (copyFrom) await copyTables(pool, required(copyFrom).database, database);
      }
      await pool.query(`GRANT ALL ON ${grantTarget(database)} TO ?@'%'`, [user]);
      if (existed) return "existed";
      return copyFrom ? "copied" : "created";
    },
    async drop(tenant) {
      const { database, user } = required(tenant);
      await pool.query("DROP DATABASE IF EXISTS ??", [database]);
      await pool.query("DROP USER IF EXISTS ?@'%'", [user]);
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

/**
 * MySQL has no database templates: the copy is made inside the server, table by table (with
 * indexes and data; foreign keys, views, triggers and routines are not copied).
 */
async function copyTables(pool: mysql.Pool, source: string, target: string): Promise<void> {
  const connection = await pool.getConnection();
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
    await connection.query("SET SESSION FOREIGN_KEY_CHECKS = 1").catch(() => undefined);
    connection.release();
  }
}

function required(tenant: Tenant): { database: string; user: string } {
  if (!tenant.database || !tenant.user) throw new Error("a MySQL tenant needs a database and a user");
  return { database: tenant.database, user: tenant.user };
}
