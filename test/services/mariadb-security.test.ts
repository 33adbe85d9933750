import mysql from "mysql2/promise";
import { describe, expect, onTestFinished, test } from "vitest";
import type { ServiceRecord } from "../../src/services/index.js";
import { mariadb } from "../../src/services/kinds/mysql.js";
import { localProvider } from "../../src/services/providers/local.js";
import type { ServerRecord } from "../../src/services/providers/provider.js";
import { serviceConfig, type TestLaboratory, testLaboratory } from "../support/laboratory.js";

const SECRET = "the-victims-secret";

/** A MariaDB connection closed when the test ends. */
async function connect(options: string | mysql.ConnectionOptions): Promise<mysql.Connection> {
  const connection = await mysql.createConnection(
    typeof options === "string" ? { uri: options, multipleStatements: true } : options,
  );
  onTestFinished(() => connection.destroy());
  return connection;
}

/** Why a new connection is refused ("connected" when it is not). */
async function refusal(options: string | mysql.ConnectionOptions): Promise<string> {
  try {
    await (await mysql.createConnection(options as mysql.ConnectionOptions)).end();
    return "connected";
  } catch (error) {
    return (error as Error).message;
  }
}

/** Brings experiment `experiment` of app shop up with one communal MariaDB service `db`. */
function up(lab: TestLaboratory, experiment: string, options: Record<string, unknown> = {}) {
  return lab.services.up({
    app: "shop",
    experiment,
    services: { db: serviceConfig("local", "mariadb", "communal", { options }) },
  });
}

/** The tenant's variables (DB_URL, DB_NAME, …) after its experiment is up. */
async function tenant(lab: TestLaboratory, experiment: string): Promise<Record<string, string>> {
  await up(lab, experiment);
  return lab.services.environment("shop", experiment);
}

async function server(lab: TestLaboratory): Promise<ServerRecord> {
  return (await lab.registry.list<ServerRecord>("servers"))[0] as ServerRecord;
}

/** The laboratory's administrator session on the communal server. */
async function administrator(lab: TestLaboratory): Promise<mysql.Connection> {
  const { host, port, user, password } = (await server(lab)).admin;
  return connect({ host, port, user: user ?? "root", password: password ?? "" });
}

/** Polls the server's process list until a statement like `pattern` is in it. */
async function waitForStatement(admin: mysql.Connection, pattern: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const [rows] = await admin.query(
      "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND ID <> CONNECTION_ID()",
      [pattern],
    );
    if ((rows as unknown[]).length > 0) return;
    if (Date.now() > deadline) throw new Error(`no statement like ${pattern} ran`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A victim tenant with a secret, and a source tenant (experiment main) that has prepared a
 * trojan: a view run with the rights of whoever reads it, calling a function that reads the
 * victim's table — harmless to main itself, which cannot read the victim.
 */
async function trojanSource(lab: TestLaboratory, table: string): Promise<mysql.Connection> {
  const victim = await connect((await tenant(lab, "victim")).DB_URL as string);
  await victim.query("CREATE TABLE notes (body text); INSERT INTO notes VALUES (?)", [SECRET]);
  const main = await tenant(lab, "main");
  const source = await connect(main.DB_URL as string);
  await source.query(
    `CREATE FUNCTION steal() RETURNS text SQL SECURITY INVOKER RETURN (SELECT GROUP_CONCAT(body) FROM ${mysql.escapeId(
      (await lab.services.environment("shop", "victim")).DB_NAME as string,
    )}.notes);
     ${table};
     INSERT INTO z VALUES ('z', 1);
     CREATE SQL SECURITY INVOKER VIEW trojan AS SELECT steal() AS body, 1 AS id`,
  );
  await expect(source.query("SELECT * FROM trojan")).rejects.toThrow(/lack rights/);
  return source;
}

describe("MariaDB administrators", () => {
  test("the native server keeps no account without a password, and root needs the administrator's", async () => {
    const lab = await testLaboratory();
    await tenant(lab, "main");
    const admin = await administrator(lab);
    const [accounts] = await admin.query(
      `SELECT User AS user, Host AS host FROM mysql.global_priv
       WHERE IFNULL(JSON_VALUE(Priv, '$.authentication_string'), '') = ''
         AND IFNULL(JSON_VALUE(Priv, '$.account_locked'), 'false') = 'false'
         AND IFNULL(JSON_VALUE(Priv, '$.is_role'), 'false') = 'false'`,
    );
    expect(accounts).toEqual([]);
    const [anonymous] = await admin.query("SELECT Host AS host FROM mysql.user WHERE User = ''");
    expect(anonymous).toEqual([]);
    const { port } = (await server(lab)).admin;
    for (const host of ["127.0.0.1", "::1"])
      expect(await refusal({ host, port, user: "root", password: "" })).toMatch(
        /Access denied|ECONNREFUSED|EADDRNOTAVAIL/,
      );
  });
});

describe("MariaDB tenants", () => {
  test("a tenant sees no other database than its own", async () => {
    const lab = await testLaboratory();
    await tenant(lab, "b");
    const a = await tenant(lab, "a");
    const [rows] = await (await connect(a.DB_URL as string)).query("SHOW DATABASES");
    expect((rows as { Database: string }[]).map((r) => r.Database).sort()).toEqual([
      "information_schema",
      a.DB_NAME,
    ]);
  });

  test("a tenant holds at most tenant_connection_limit connections; other tenants and the laboratory still get in", async () => {
    const lab = await testLaboratory({ "/services/local/mariadb/default": { tenant_connection_limit: 3 } });
    const a = await tenant(lab, "a");
    const b = await tenant(lab, "b");
    // A tenant made before limits existed gets its limit when its experiment is brought up again.
    const user = new URL(a.DB_URL as string).username;
    await (await administrator(lab)).query("ALTER USER ?@'%' WITH MAX_USER_CONNECTIONS 0", [user]);
    await up(lab, "a");

    for (let i = 0; i < 3; i++) await connect(a.DB_URL as string);
    expect(await refusal(a.DB_URL as string)).toMatch(
      new RegExp(`User '${user}' has exceeded the 'max_user_connections' resource`),
    );
    await connect(b.DB_URL as string);
    expect((await up(lab, "c"))[0]?.status).toBe("ready");
  });

  test("with every connection of the server held by tenants, the laboratory still makes a tenant", async () => {
    const lab = await testLaboratory({ "/services/local/mariadb/default": { tenant_connection_limit: 5 } });
    const [a, b, d] = [await tenant(lab, "a"), await tenant(lab, "b"), await tenant(lab, "d")];
    // Its sessions of before are gone: the laboratory has to connect anew to a full server.
    await lab.services.close();
    const admin = await administrator(lab);
    // MariaDB's least: two tenants at their limit fill it.
    await admin.query("SET GLOBAL max_connections = 10");
    admin.destroy();

    for (const env of [a, b]) for (let i = 0; i < 5; i++) await connect(env.DB_URL as string);
    expect(await refusal(d.DB_URL as string)).toMatch(/Too many connections/);
    expect((await up(lab, "c"))[0]?.status).toBe("ready");
  });

  test("copy_from runs none of the source's code as root: a table swapped for a view mid-copy reads nothing it could not", async () => {
    const lab = await testLaboratory();
    // Many partitions make creating the copy's table slow: the swap waits for it, then goes first.
    const source = await trojanSource(
      lab,
      "CREATE TABLE z (body text, id int) PARTITION BY HASH(id) PARTITIONS 300",
    );
    const watcher = await administrator(lab);
    const copying = up(lab, "copy", { copy_from: "main" }).then(
      () => "copied",
      (error: Error) => error.message,
    );
    await waitForStatement(watcher, "CREATE TABLE%LIKE%`z`");
    await source.query("RENAME TABLE z TO z_real, trojan TO z");

    const outcome = await copying;
    const [rows] = await watcher.query("SELECT body FROM shop_copy_db.z").catch(() => [[]]);
    expect(JSON.stringify(rows)).not.toContain(SECRET);
    expect(outcome).toMatch(/denied|lack rights/);
  });

  test("a dump runs none of the source's code as root: a table swapped for a view mid-dump reads nothing it could not", async () => {
    const lab = await testLaboratory();
    const source = await trojanSource(lab, "CREATE TABLE z (body text, id int)");
    const watcher = await administrator(lab);
    const swapper = await connect((await lab.services.environment("shop", "main")).DB_URL as string);
    const record = (await lab.registry.read<ServiceRecord>(
      "services",
      "shop",
      "main",
      "db",
    )) as ServiceRecord;
    const tools = await localProvider(lab.registry).tools(await server(lab));

    // The dump reads z's definition, then waits for z's rows behind main's lock; the swap
    // queued behind the same lock goes first when main lets go.
    await source.query("LOCK TABLES z WRITE");
    const dump = mariadb.dump as NonNullable<typeof mariadb.dump>;
    const dumping = dump(tools, record.tenant).then(
      (output) => output,
      (error: Error) => error.message,
    );
    await waitForStatement(watcher, "SELECT%FROM `z`%");
    const swapped = swapper.query("RENAME TABLE z TO z_real, trojan TO z, z_real TO trojan");
    await waitForStatement(watcher, "RENAME TABLE z TO%");
    await source.query("UNLOCK TABLES");
    await swapped;

    const output = await dumping;
    expect(output).not.toContain(SECRET);
    expect(output).toMatch(/lack rights|denied/);
  });
});
