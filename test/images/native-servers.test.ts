import { execa } from "execa";
import { describe, expect, it } from "vitest";

// The `local` provider runs these servers natively; scripts/infra/setup.sh installs them.
describe("native servers for the local provider", () => {
  it.each([
    ["postgres", ["--version"], /PostgreSQL\) 1\d/],
    ["initdb", ["--version"], /PostgreSQL\) 1\d/],
    ["mariadbd", ["--version"], /MariaDB/],
    ["redis-server", ["--version"], /Redis server v=7/],
    ["memcached", ["-V"], /memcached 1\.6/],
  ])("%s is installed", async (binary, args, version) => {
    const result = await execa(binary, args, {
      env: { PATH: `${process.env.PATH}:/usr/sbin:/usr/lib/postgresql/15/bin` },
    });
    expect(result.stdout).toMatch(version);
  });
});
