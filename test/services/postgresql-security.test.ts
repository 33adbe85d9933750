import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { describe, expect, onTestFinished, test } from "vitest";
import { serviceConfig, type TestLaboratory, testLaboratory } from "../support/laboratory.js";

const { escapeIdentifier: ident, escapeLiteral: literal } = pg;

describe("copy_from runs nothing of the source's with the administrator's rights", () => {
  test("a trojan format(), = operator and event trigger in the source leave it an ordinary tenant", async () => {
    const lab = await testLaboratory();
    const main = await upDatabase(lab, "main");
    const marker = await plantTrojans(main.DB_URL, main.DB_USER as string);

    const copy = await upDatabase(lab, "copy", { copy_from: "main" });

    await expectNoEscalation(marker, main.DB_URL);
    await session(copy.DB_URL, async (copied) => {
      expect((await copied.query("SELECT body FROM app.notes")).rows).toEqual([{ body: "seed" }]);
      // The copy's tenant owns what the source made: it can take the trojans out.
      await copied.query(`
        DROP OPERATOR public.= (oid, regrole);
        DROP FUNCTION public.format(text, text, text), public.format(text, text, regclass, text),
          public.same(oid, regrole), public.on_ddl(), public.trojan();
        ALTER SCHEMA app RENAME TO attic;
      `);
    });
  });

  test("the same trojans, copied through a dump while the source's app holds its database", async () => {
    const lab = await testLaboratory();
    const main = await upDatabase(lab, "main");
    const marker = await plantTrojans(main.DB_URL, main.DB_USER as string);
    // A template must have no other session: the provider falls back to pg_dump and a replay.
    const [app] = await connections(main.DB_URL, 1);

    const copy = await upDatabase(lab, "copy", { copy_from: "main" });

    // The app's session lived through the copy, so the source was never a template.
    expect((await app?.query("SELECT body FROM app.notes"))?.rows).toEqual([{ body: "seed" }]);
    await expectNoEscalation(marker, main.DB_URL);
    await expectNoEscalation(marker, copy.DB_URL);
    await session(copy.DB_URL, async (copied) => {
      expect((await copied.query("SELECT body FROM app.notes")).rows).toEqual([{ body: "seed" }]);
      const { rows } = await copied.query(
        "SELECT pg_get_userbyid(proowner) AS owner FROM pg_proc WHERE proname = 'trojan'",
      );
      expect(rows).toEqual([{ owner: copy.DB_USER }]);
    });
  });

  test("dropping a tenant runs none of its trojans, nor those of a database it holds something in", async () => {
    const lab = await testLaboratory();
    const doomed = await upDatabase(lab, "doomed");
    const host = await upDatabase(lab, "host");
    // The trojans make the host's tenant superuser: the one that outlives the drop.
    const marker = await plantTrojans(doomed.DB_URL, host.DB_USER as string);
    await plantTrojans(host.DB_URL, host.DB_USER as string, marker);
    // The doomed tenant holds objects in the host's database, so the drop works in there too.
    const doomedUser = ident(doomed.DB_USER as string);
    await session(host.DB_URL, (client) =>
      client.query(`GRANT CONNECT, CREATE ON DATABASE ${ident(host.DB_NAME as string)} TO ${doomedUser};
        GRANT USAGE, CREATE ON SCHEMA public TO ${doomedUser}`),
    );
    await session(withDatabase(doomed.DB_URL, host.DB_NAME), (client) =>
      client.query("CREATE TABLE public.left_behind (body text DEFAULT public.format('%s', 'x', 'y'))"),
    );

    expect(await lab.services.down("shop", "doomed")).toEqual(["db"]);

    expect(await roleExists(lab, doomed.DB_USER as string)).toBe(false);
    await expectNoEscalation(marker, host.DB_URL);
    await session(host.DB_URL, async (client) => {
      expect((await client.query("SELECT to_regclass('public.left_behind') AS t")).rows).toEqual([
        { t: null },
      ]);
    });
  });
});

/**
 * Plants, in the database of `url`, a `trojan()` that — called with a superuser's rights — makes
 * `victim` superuser and runs a shell command on the laboratory writing a marker file (once: it
 * is called for every catalogue row; called by anyone else it does nothing), and reaches it from
 * a better match than the built-in `format(text, VARIADIC "any")` and `=(oid, oid)` and from an
 * event trigger function (whose trigger a tenant may not create). Returns the marker's path.
 */
async function plantTrojans(url: string | undefined, victim: string, marker?: string): Promise<string> {
  const file = marker ?? join(tmpdir(), `labtest-trojan-${randomBytes(6).toString("hex")}`);
  onTestFinished(() => rm(file, { force: true }));
  await session(url, async (tenant) => {
    await tenant.query(`
      CREATE SCHEMA app;
      CREATE TABLE app.notes (body text);
      INSERT INTO app.notes VALUES ('seed');
      CREATE FUNCTION public.trojan() RETURNS void LANGUAGE plpgsql AS $body$
      BEGIN
        IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = ${literal(victim)}) THEN
          RETURN;
        END IF;
        EXECUTE ${literal(`ALTER ROLE ${ident(victim)} SUPERUSER`)};
        EXECUTE ${literal(`COPY (SELECT 1) TO PROGRAM ${literal(`touch ${file}; cat >/dev/null`)}`)};
      EXCEPTION WHEN insufficient_privilege THEN NULL;
      END $body$;
      CREATE FUNCTION public.format(text, text, text) RETURNS text LANGUAGE plpgsql AS $body$
      BEGIN PERFORM public.trojan(); RETURN pg_catalog.format($1, $2, $3); END $body$;
      CREATE FUNCTION public.format(text, text, regclass, text) RETURNS text LANGUAGE plpgsql AS $body$
      BEGIN PERFORM public.trojan(); RETURN pg_catalog.format($1, $2, $3, $4); END $body$;
      CREATE FUNCTION public.same(oid, regrole) RETURNS boolean LANGUAGE plpgsql AS $body$
      BEGIN PERFORM public.trojan(); RETURN $1 OPERATOR(pg_catalog.=) $2::oid; END $body$;
      CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regrole, FUNCTION = public.same);
      CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $body$
      BEGIN PERFORM public.trojan(); END $body$;
    `);
    await expect(
      tenant.query("CREATE EVENT TRIGGER on_ddl ON ddl_command_start EXECUTE FUNCTION public.on_ddl()"),
    ).rejects.toThrow(/permission denied to create event trigger/);
  });
  return file;
}

/** No trojan ran with a superuser's rights: no marker file, and the tenant of `url` is no superuser. */
async function expectNoEscalation(marker: string, url: string | undefined): Promise<void> {
  expect(existsSync(marker)).toBe(false);
  await session(url, async (tenant) => {
    const { rows } = await tenant.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user");
    expect(rows).toEqual([{ rolsuper: false }]);
  });
}

/** One of each kind of object a tenant can own, with rows in the tables. */
const EVERY_KIND = `
  CREATE EXTENSION citext;
  CREATE TYPE mood AS ENUM ('happy', 'sad');
  CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
  CREATE TYPE pair AS (a integer, b integer);
  CREATE TYPE span AS RANGE (subtype = float8);
  CREATE TABLE todos (id serial PRIMARY KEY, title citext NOT NULL, mood mood, rank positive);
  CREATE TABLE events (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, todo integer REFERENCES todos);
  CREATE SEQUENCE tickets;
  CREATE VIEW sad_todos AS SELECT * FROM todos WHERE mood = 'sad';
  CREATE MATERIALIZED VIEW todo_count AS SELECT count(*) AS n FROM todos;
  CREATE FUNCTION shout(text) RETURNS text LANGUAGE sql AS 'SELECT upper($1)';
  CREATE PROCEDURE add_todo(text) LANGUAGE sql AS 'INSERT INTO todos (title) VALUES ($1)';
  CREATE AGGREGATE total(integer) (SFUNC = int4pl, STYPE = integer);
  CREATE COLLATION plain FROM "C";
  CREATE TEXT SEARCH CONFIGURATION words (COPY = simple);
  CREATE STATISTICS todo_stats ON mood, rank FROM todos;
  CREATE SCHEMA archive;
  CREATE TABLE archive.todos (LIKE todos);
  ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC;
  SELECT lo_from_bytea(0, 'attachment');
  CALL add_todo('first');
  INSERT INTO todos (title, mood, rank) VALUES ('second', 'sad', 2);
  INSERT INTO events (todo) VALUES (1);
`;

describe("copy_from gives the copy's tenant every object", () => {
  test.each([
    ["as a template", false],
    ["through a dump, while the source is in use", true],
  ])(
    "%s: serial and identity columns, views, routines, types, extensions, large objects",
    async (_how, inUse) => {
      const lab = await testLaboratory();
      const main = await upDatabase(lab, "main");
      await session(main.DB_URL, (source) => source.query(EVERY_KIND));

      const held = inUse ? await connections(main.DB_URL, 1) : [];
      const copy = await upDatabase(lab, "copy", { copy_from: "main" });
      await Promise.all(held.map((c) => c.end()));

      await session(copy.DB_URL, async (copied) => {
        const added = await copied.query("INSERT INTO todos (title) VALUES ('third') RETURNING id");
        expect(added.rows).toEqual([{ id: 3 }]);
        await copied.query("INSERT INTO events (todo) VALUES (3)");
        expect((await copied.query("SELECT nextval('tickets') AS n")).rows).toEqual([{ n: "1" }]);
        const attachment = await copied.query(
          "SELECT convert_from(lo_get(oid), 'UTF8') AS body, lo_unlink(oid) FROM pg_largeobject_metadata",
        );
        expect(attachment.rows).toEqual([{ body: "attachment", lo_unlink: 1 }]);
        await copied.query(`
          ALTER TABLE todos ADD COLUMN done boolean;
          ALTER SEQUENCE todos_id_seq RESTART WITH 100;
          ALTER TABLE events ALTER COLUMN id RESTART WITH 100;
          ALTER SEQUENCE tickets RENAME TO stubs;
          ALTER VIEW sad_todos RENAME TO gloomy_todos;
          REFRESH MATERIALIZED VIEW todo_count;
          ALTER MATERIALIZED VIEW todo_count RENAME TO how_many;
          ALTER FUNCTION shout(text) RENAME TO yell;
          ALTER PROCEDURE add_todo(text) RENAME TO append_todo;
          ALTER AGGREGATE total(integer) RENAME TO sum_of;
          ALTER TYPE mood ADD VALUE 'calm';
          ALTER DOMAIN positive SET DEFAULT 1;
          ALTER TYPE pair ADD ATTRIBUTE c integer;
          ALTER TYPE span RENAME TO stretch;
          ALTER COLLATION plain RENAME TO bare;
          ALTER TEXT SEARCH CONFIGURATION words RENAME TO tokens;
          ALTER STATISTICS todo_stats RENAME TO todo_stats_2;
          ALTER SCHEMA archive RENAME TO attic;
          ALTER TABLE attic.todos RENAME TO old_todos;
          DROP EXTENSION citext CASCADE;
        `);
      });
      // The source's tenant has no way into the copy...
      await expect(session(withDatabase(main.DB_URL, copy.DB_NAME), () => Promise.resolve())).rejects.toThrow(
        /permission denied for database/,
      );
      // ...nor anything in it that would keep it from being dropped.
      expect(await lab.services.down("shop", "main")).toEqual(["db"]);
      expect(await roleExists(lab, main.DB_USER as string)).toBe(false);
      await session(copy.DB_URL, async (copied) => {
        expect((await copied.query("SELECT count(*)::int AS n FROM todos")).rows).toEqual([{ n: 3 }]);
      });
    },
  );
});

describe("copies of one source at once", () => {
  test("each gets its objects and the source keeps its database", async () => {
    const lab = await testLaboratory();
    const main = await upDatabase(lab, "main");
    await session(main.DB_URL, (source) =>
      source.query(
        "CREATE TABLE todos (id serial PRIMARY KEY, title text); INSERT INTO todos (title) VALUES ('x')",
      ),
    );
    const copies = ["c1", "c2", "c3", "c4"];
    const envs = await Promise.all(copies.map((copy) => upDatabase(lab, copy, { copy_from: "main" })));
    for (const env of envs)
      await session(env.DB_URL, (client) => client.query("INSERT INTO todos (title) VALUES ('y')"));
    // Only a database's owner may create schemas in it.
    await session(main.DB_URL, (client) => client.query("CREATE SCHEMA still_mine"));
  });
});

describe("connection limits", () => {
  test("a tenant holds at most its limit; other tenants and the laboratory still connect", async () => {
    const lab = await testLaboratory(connectionLimitState(3));
    const a = await upDatabase(lab, "a");
    const b = await upDatabase(lab, "b");

    await connections(a.DB_URL, 3);
    await expect(connections(a.DB_URL, 1)).rejects.toThrow(/too many connections for role/);
    await session(b.DB_URL, (client) => client.query("SELECT 1"));
    await lab.services.close();
    const c = await upDatabase(lab, "c");
    await session(c.DB_URL, (client) => client.query("SELECT 1"));
    await expect(
      session(b.DB_URL, (client) => client.query("ALTER ROLE CURRENT_USER CONNECTION LIMIT -1")),
    ).rejects.toThrow(/permission denied/);
  });

  test("an existing tenant gets the limit state sets now, and loses what it was not given", async () => {
    const lab = await testLaboratory(connectionLimitState(2));
    const a = await upDatabase(lab, "a");
    await session(await administrator(lab), (admin) =>
      admin.query(`ALTER ROLE ${ident(a.DB_USER as string)} SUPERUSER CREATEDB`),
    );
    const values = join(lab.home, "state-values.json");
    await writeFile(
      values,
      JSON.stringify({ ...JSON.parse(await readFile(values, "utf8")), ...connectionLimitState(4) }),
    );
    await upDatabase(lab, "a");

    await connections(a.DB_URL, 4);
    await expect(connections(a.DB_URL, 1)).rejects.toThrow(/too many connections for role/);
    await session(await administrator(lab), async (admin) => {
      const { rows } = await admin.query("SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = $1", [
        a.DB_USER,
      ]);
      expect(rows).toEqual([{ rolsuper: false, rolcreatedb: false }]);
    });
  });

  test("tenants that take every ordinary slot of the server leave the laboratory its reserved ones", async () => {
    const lab = await testLaboratory(connectionLimitState(null));
    const greedy = await upDatabase(lab, "greedy");
    await expect(connections(greedy.DB_URL, 1000)).rejects.toThrow(/remaining connection slots are reserved/);
    const held = await session(await administrator(lab), (admin) =>
      admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1", [greedy.DB_USER]),
    );
    expect(held.rows[0]?.n).toBeGreaterThan(50);

    await lab.services.close();
    await upDatabase(lab, "next");
    expect(await lab.services.down("shop", "next")).toEqual(["db"]);
  });
});

describe("what a tenant can reach on a communal server", () => {
  test("only its own database: not postgres, template1 or another tenant's", async () => {
    const lab = await testLaboratory();
    const a = await upDatabase(lab, "a");
    const b = await upDatabase(lab, "b");
    for (const database of ["postgres", "template1", b.DB_NAME as string])
      await expect(session(withDatabase(a.DB_URL, database), () => Promise.resolve())).rejects.toThrow(
        /permission denied for database/,
      );
    await session(a.DB_URL, (client) => client.query("CREATE TABLE notes (body text)"));
  });

  test("what another tenant granted a tenant does not keep the tenant from being dropped", async () => {
    const lab = await testLaboratory();
    const a = await upDatabase(lab, "a");
    const b = await upDatabase(lab, "b");
    await session(b.DB_URL, (client) =>
      client.query(
        `CREATE TABLE shared (body text); GRANT SELECT ON shared TO ${ident(a.DB_USER as string)};
         GRANT CONNECT ON DATABASE ${ident(b.DB_NAME as string)} TO ${ident(a.DB_USER as string)}`,
      ),
    );
    expect(await lab.services.down("shop", "a")).toEqual(["db"]);
    expect(await roleExists(lab, a.DB_USER as string)).toBe(false);
    await session(b.DB_URL, (client) => client.query("SELECT * FROM shared"));
  });
});

/** Brings experiment `experiment` of app shop up with a communal local PostgreSQL `db`; returns its variables. */
async function upDatabase(
  lab: TestLaboratory,
  experiment: string,
  options: Record<string, unknown> = {},
): Promise<Record<string, string>> {
  await lab.services.up({
    app: "shop",
    experiment,
    services: { db: serviceConfig("local", "postgresql", "communal", { options }) },
  });
  return lab.services.environment("shop", experiment);
}

/** State values giving communal local PostgreSQL tenants `limit` connections each. */
function connectionLimitState(limit: number | null): Record<string, unknown> {
  return { "/services/local/postgresql/default": { tenant_connection_limit: limit } };
}

/** Runs `work` in a session (a tenant's URL, or the administrator's access), closed afterwards. */
async function session<T>(config: string | pg.ClientConfig | undefined, work: (c: pg.Client) => Promise<T>) {
  const client = new pg.Client(typeof config === "string" ? { connectionString: config } : config);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Opens `count` sessions of `url`, closed when the test ends. */
async function connections(url: string | undefined, count: number): Promise<pg.Client[]> {
  const opened: pg.Client[] = [];
  onTestFinished(async () => {
    await Promise.all(opened.map((c) => c.end().catch(() => undefined)));
  });
  for (let i = 0; i < count; i++) {
    const client = new pg.Client({ connectionString: url });
    // The server ends a tenant's sessions when its database is dropped.
    client.on("error", () => undefined);
    await client.connect();
    opened.push(client);
  }
  return opened;
}

/** A tenant URL aimed at another database. */
function withDatabase(url: string | undefined, database: string | undefined): string {
  return (url ?? "").replace(/\/[^/]*$/, `/${database}`);
}

/** The administrator's access to the laboratory's (only) PostgreSQL server. */
async function administrator(lab: TestLaboratory): Promise<pg.ClientConfig> {
  const [server] = await lab.registry.list<{ admin: pg.ClientConfig }>("servers");
  return { ...server?.admin, database: "postgres" };
}

async function roleExists(lab: TestLaboratory, role: string): Promise<boolean> {
  return session(await administrator(lab), async (admin) => {
    const { rowCount } = await admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]);
    return rowCount === 1;
  });
}
