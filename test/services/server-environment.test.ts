// A laboratory's native servers are labtest's alone: whoever first brings one up, its programs
// come from the laboratory's system directories and it starts from labtest's base environment,
// nothing of that person's shell (PATH, TZ, …), so a communal server is the same for everyone.
import { chmod, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import pg from "pg";
import { expect, test } from "vitest";
import type { ServerRecord } from "../../src/services/providers/provider.js";
import { testLaboratory } from "../support/laboratory.js";
import { gitRepo, scratchDir, writeFiles } from "../support/project.js";

const LABTEST = join(import.meta.dirname, "../../bin/labtest.js");
/** The server programs a developer might have built or installed for themselves. */
const DEVELOPERS_PROGRAMS = ["redis-server", "initdb", "postgres"];

test("a communal PostgreSQL and a Redis brought up from a developer's shell (their TZ, their server programs first on PATH) run Debian's programs with the laboratory's time zone", async () => {
  const lab = await testLaboratory();
  const repo = await gitRepo("shop");
  await writeFiles(repo, {
    ".labtest.yml": [
      "labtest:",
      "  app_name: shop",
      "  services:",
      "    db: { provider: local, service: postgresql }",
      "    cache: { provider: local, service: redis }",
      "",
    ].join("\n"),
  });
  const developer = await scratchDir("labtest-developer-");
  const marker = join(developer, "ran");
  await writeFiles(
    developer,
    Object.fromEntries(
      DEVELOPERS_PROGRAMS.map((name) => [`bin/${name}`, `#!/bin/sh\necho ${name} >> ${marker}\nexit 1\n`]),
    ),
  );
  // Readable and runnable by all, as homes often are: a server's account could run them.
  await chmod(developer, 0o755);
  await Promise.all(DEVELOPERS_PROGRAMS.map((name) => chmod(join(developer, "bin", name), 0o755)));
  const labtest = (...argv: string[]) =>
    execa(process.execPath, [LABTEST, "--state", lab.statePath, "--json", ...argv], {
      cwd: repo,
      env: {
        PATH: `${join(developer, "bin")}:${process.env.PATH}`,
        HOME: developer,
        TZ: "Pacific/Chatham",
        LANG: "de_DE.UTF-8",
        LABTEST_HOME: lab.home,
      },
      extendEnv: false,
      reject: false,
    });

  const up = await labtest("services", "up", "-e", "main");
  expect(up.exitCode, `${up.stdout}${up.stderr}`).toBe(0);
  const env = JSON.parse((await labtest("services", "env", "-e", "main", "--host")).stdout) as Record<
    string,
    string
  >;

  expect(await stat(marker).catch(() => "never written")).toBe("never written");
  const servers = await lab.registry.list<ServerRecord>("servers");
  expect(servers.map((server) => server.kind).sort()).toEqual(["postgresql", "redis"]);
  for (const server of servers)
    expect(await readlink(`/proc/${server.details.pid}/exe`), server.kind).toMatch(/^\/usr\//);
  const client = new pg.Client({ connectionString: env.DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query("SHOW timezone");
    expect(rows[0].TimeZone).not.toBe("Pacific/Chatham");
  } finally {
    await client.end();
  }
});
