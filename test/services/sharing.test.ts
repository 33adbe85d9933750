import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { readInitialData } from "../../src/config/initial-data.js";
import { demultiplex, experimentNetwork } from "../../src/lab/docker.js";
import { type InitialData, ProvisionError, type ServiceRecord } from "../../src/services/index.js";
import { type ClientKind, writeAndRead } from "../support/clients.js";
import { docker, localImage } from "../support/docker.js";
import { serviceConfig, testLaboratory } from "../support/laboratory.js";

/** Initial data read as a configuration in the laboratory's home would name it. */
const beside =
  (home: string): InitialData =>
  (service, path) =>
    readInitialData(path, home, service);

describe("shared services", () => {
  test("reuse the target's tenant; taking the target down is refused while it is shared, unless forced", async () => {
    const lab = await testLaboratory();
    await lab.services.up({
      app: "shop",
      experiment: "main",
      services: { db: serviceConfig("local", "postgresql") },
    });
    const shared = serviceConfig("local", "postgresql", "shared", { shared_experiment_name: "main" });
    const [status] = await lab.services.up({
      app: "shop",
      experiment: "feature",
      services: { db: shared },
    });
    expect(status).toMatchObject({ provisionType: "shared", shares: "shop/main/db" });

    const main = await lab.services.environment("shop", "main");
    const feature = await lab.services.environment("shop", "feature");
    expect(feature.DATABASE_URL).toBe(main.DATABASE_URL);
    await writeAndRead("postgresql", main, "DB", "written by main");
    expect(await writeAndRead("postgresql", feature, "DB", "written by main")).toBe("written by main");

    const listed = await lab.services.list("shop", "main");
    expect(listed[0]?.sharedBy).toEqual(["shop/feature/db"]);
    const refused = await lab.services.down("shop", "main").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ProvisionError);
    expect((refused as Error).message).toContain("shop/feature/db");
    expect(await writeAndRead("postgresql", main, "DB", "still there")).toBe("still there");

    // Taking the sharer down creates and destroys nothing of the target.
    expect(await lab.services.down("shop", "feature")).toEqual(["db"]);
    expect(await writeAndRead("postgresql", main, "DB", "after the sharer left")).toBe(
      "after the sharer left",
    );
    await lab.services.up({
      app: "shop",
      experiment: "feature",
      services: { db: shared },
    });
    expect(await lab.services.down("shop", "main", { force: true })).toEqual(["db"]);
  });

  test("a missing target, or one without the service, is a clear error and creates nothing", async () => {
    const lab = await testLaboratory();
    const shared = serviceConfig("local", "redis", "shared", { shared_experiment_name: "nowhere" });
    const request = { app: "shop", experiment: "feature", services: { cache: shared } };
    await expect(lab.services.up(request)).rejects.toThrow(/nowhere of app shop has no services up/);
    await lab.services.up({
      app: "shop",
      experiment: "nowhere",
      services: { db: serviceConfig("local", "memcached") },
    });
    await expect(lab.services.up(request)).rejects.toThrow(
      /has no redis service \(it has db \(memcached\)\)/,
    );
    expect((await lab.services.list("shop", "feature")).length).toBe(0);
  });

  test("on docker, a shared independent server joins the sharer's network under the sharer's service name", async () => {
    const lab = await testLaboratory();
    await lab.services.up({
      app: "shop",
      experiment: "main",
      services: { cache: serviceConfig("docker", "redis", "independent") },
    });
    await lab.services.up({
      app: "shop",
      experiment: "feature",
      services: { kv: serviceConfig("docker", "redis", "shared", { shared_experiment_name: "main" }) },
    });
    const env = await lab.services.environment("shop", "feature");
    expect(env.KV_HOST).toBe("kv");
    // A client container on the experiment's network, as the app would be, with the app's URL.
    const output = await runOnNetwork(
      experimentNetwork(lab.registry.id, "shop", "feature"),
      localImage("redis"),
      ["redis-cli", "--no-auth-warning", "-u", env.KV_URL as string, "SET", `${env.KV_PREFIX}k`, "v"],
      lab.registry.id,
    );
    expect(output.trim()).toBe("OK");
  });
});

describe("data at creation", () => {
  test.each(["postgresql", "mariadb"] as ClientKind[])(
    "%s: copy_from makes an independent copy; initial_data loads the newest dump of a directory",
    async (kind) => {
      const lab = await testLaboratory();
      await writeFile(
        join(lab.home, "old.sql"),
        "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('old dump');",
      );
      await new Promise((r) => setTimeout(r, 20));
      await writeFile(
        join(lab.home, "new.sql"),
        "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('seed');",
      );
      const seeded = serviceConfig("local", kind, "communal", { options: { initial_data: "." } });
      await lab.services.up({
        app: "shop",
        experiment: "main",
        services: { db: seeded },
        initialData: beside(lab.home),
      });
      const main = await lab.services.environment("shop", "main");
      expect(await readNotes(kind, main)).toEqual(["seed"]);

      const copy = serviceConfig("local", kind, "communal", { options: { copy_from: "main" } });
      await lab.services.up({ app: "shop", experiment: "copy", services: { db: copy } });
      const copied = await lab.services.environment("shop", "copy");
      expect(await readNotes(kind, copied)).toEqual(["seed"]);
      await writeAndRead(kind, copied, "DB", "only in the copy");
      expect(await readNotes(kind, copied)).toEqual(["only in the copy", "seed"]);
      expect(await readNotes(kind, main)).toEqual(["seed"]);
    },
  );

  test.each([
    ["postgresql", "local", "communal"],
    ["postgresql", "docker", "independent"],
    ["mariadb", "docker", "independent"],
  ] as const)(
    "%s: copy_from while the source is in use, or onto another (%s %s) server, goes through the source server's dump",
    async (kind, provider, provisionType) => {
      const lab = await testLaboratory();
      await writeFile(
        join(lab.home, "seed.sql"),
        "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('seed');",
      );
      const seeded = serviceConfig(provider, kind, "communal", { options: { initial_data: "seed.sql" } });
      await lab.services.up({
        app: "shop",
        experiment: "main",
        services: { db: seeded },
        initialData: beside(lab.home),
      });
      const main = await lab.services.environment("shop", "main", {}, { hostReachable: true });
      // The source's app holds a session open: PostgreSQL cannot use its database as a template.
      const { default: pg } = await import("pg");
      const session = kind === "postgresql" ? new pg.Client({ connectionString: main.DB_URL }) : null;
      await session?.connect();
      try {
        const copy = serviceConfig(provider, kind, provisionType, { options: { copy_from: "main" } });
        await lab.services.up({
          app: "shop",
          experiment: "copy",
          services: { db: copy },
        });
      } finally {
        await session?.end();
      }
      const copied = await lab.services.environment("shop", "copy", {}, { hostReachable: true });
      expect(await readNotes(kind, copied)).toEqual(["seed"]);
      await writeAndRead(kind, copied, "DB", "only in the copy");
      expect(await readNotes(kind, main)).toEqual(["seed"]);
    },
  );

  test("an up that stopped half-way is redone from scratch: the data is loaded once, not twice", async () => {
    const lab = await testLaboratory();
    await writeFile(
      join(lab.home, "seed.sql"),
      "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('seed');",
    );
    const request = {
      app: "shop",
      experiment: "main",
      services: {
        db: serviceConfig("local", "postgresql", "communal", { options: { initial_data: "seed.sql" } }),
      },
      initialData: beside(lab.home),
    };
    await lab.services.up(request);
    const env = await lab.services.environment("shop", "main");
    await writeAndRead("postgresql", env, "DB", "half-way");
    const record = (await lab.registry.read<ServiceRecord>(
      "services",
      "shop",
      "main",
      "db",
    )) as ServiceRecord;
    await lab.registry.write({ ...record, status: "creating" }, "services", "shop", "main", "db");

    await lab.services.up(request);
    expect(await readNotes("postgresql", env)).toEqual(["seed"]);
    await lab.services.up(request);
    expect(await readNotes("postgresql", env)).toEqual(["seed"]);
  });

  test("a missing initial_data file is reported before anything is created", async () => {
    const lab = await testLaboratory();
    const request = {
      app: "shop",
      experiment: "main",
      services: {
        cache: serviceConfig("local", "redis"),
        db: serviceConfig("local", "postgresql", "independent", { options: { initial_data: "missing.sql" } }),
      },
      initialData: beside(lab.home),
    };
    await expect(lab.services.up(request)).rejects.toThrow(/initial data .*missing\.sql does not exist/);
    expect(await lab.services.list()).toEqual([]);
    expect(await lab.registry.list("servers")).toEqual([]);
  });
});

describe("external provider", () => {
  test("creates tenants on a server named in state, and drops them", async () => {
    const existing = await testLaboratory();
    const [status] = await existing.services.up({
      app: "infra",
      experiment: "x",
      services: { db: serviceConfig("local", "postgresql") },
    });
    const server = await existing.registry.read<{ admin: { port: number; password: string } }>(
      "servers",
      status?.server ?? "",
    );
    const url = `postgres://postgres:${server?.admin.password}@127.0.0.1:${server?.admin.port}`;

    const lab = await testLaboratory({ "/services/external/postgresql/default": { url } });
    const [external] = await lab.services.up({
      app: "shop",
      experiment: "main",
      services: { db: serviceConfig("external", "postgresql") },
    });
    expect(external).toMatchObject({
      provider: "external",
      hostEndpoint: { host: "127.0.0.1", port: server?.admin.port },
    });
    const env = await lab.services.environment("shop", "main");
    expect(await writeAndRead("postgresql", env, "DB", "on a managed server")).toBe("on a managed server");
    await lab.services.down("shop", "main");
    await expect(writeAndRead("postgresql", env, "DB", "gone")).rejects.toThrow();
  });

  test("without a URL in state, up says where the administrator must put it", async () => {
    const lab = await testLaboratory();
    await expect(
      lab.services.up({
        app: "shop",
        experiment: "main",
        services: { db: serviceConfig("external", "mariadb") },
      }),
    ).rejects.toThrow(/no external mariadb server is configured/);
  });
});

async function readNotes(kind: ClientKind, env: Record<string, string>): Promise<string[]> {
  if (kind === "postgresql") {
    const { default: pg } = await import("pg");
    const client = new pg.Client({ connectionString: env.DB_URL });
    await client.connect();
    try {
      return (await client.query("SELECT body FROM notes ORDER BY body")).rows.map((r) => r.body);
    } finally {
      await client.end();
    }
  }
  const { default: mysql } = await import("mysql2/promise");
  const connection = await mysql.createConnection(env.DB_URL as string);
  try {
    const [rows] = await connection.query("SELECT body FROM notes ORDER BY body");
    return (rows as { body: string }[]).map((r) => r.body);
  } finally {
    await connection.end();
  }
}

/** Runs a command in a throwaway container on `network` (labelled for the laboratory's cleanup). */
async function runOnNetwork(
  network: string,
  image: string,
  cmd: string[],
  laboratory: string,
): Promise<string> {
  const container = await docker.createContainer({
    Image: image,
    Entrypoint: [],
    Cmd: cmd,
    Labels: { "labtest.laboratory": laboratory },
    HostConfig: { NetworkMode: network },
  });
  try {
    await container.start();
    await container.wait();
    return demultiplex((await container.logs({ stdout: true, stderr: true })) as unknown as Buffer);
  } finally {
    await container.remove({ force: true });
  }
}

describe("ephemeral servers", () => {
  test("an ephemeral independent PostgreSQL on docker keeps its data on tmpfs with fsync off", async () => {
    const lab = await testLaboratory();
    const db = serviceConfig("docker", "postgresql", "independent", { options: { ephemeral: true } });
    const [status] = await lab.services.up({
      app: "shop",
      experiment: "tmp",
      services: { db },
    });
    const env = await lab.services.environment("shop", "tmp", {}, { hostReachable: true });
    const { default: pg } = await import("pg");
    const client = new pg.Client({ connectionString: env.DB_URL });
    await client.connect();
    try {
      expect((await client.query("SHOW fsync")).rows[0]?.fsync).toBe("off");
    } finally {
      await client.end();
    }
    const info = await docker.getContainer(status?.server ?? "").inspect();
    expect(Object.keys(info.HostConfig.Tmpfs ?? {})).toEqual(["/var/lib/postgresql/data"]);
    expect(info.Mounts.filter((m) => m.Type === "volume")).toEqual([]);
  });
});
