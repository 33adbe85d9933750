import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { scratchDir } from "../support/project.js";

async function laboratory(): Promise<string> {
  const dir = await scratchDir();
  await writeFile(
    join(dir, "state.yml"),
    [
      '"/services/docker/postgresql/default": { image: postgres, version: "16" }',
      '"/services/docker/postgresql/app-name1": { version: "15" }',
      '"/services/docker/mysql/default": { image: mariadb }',
    ].join("\n"),
  );
  await writeFile(
    join(dir, "state.json"),
    JSON.stringify({ provider: "local", service: "file", options: { path: "state.yml" } }),
  );
  return dir;
}

describe("labtest state", () => {
  it("get prints the value; --explain shows every candidate and which answered", async () => {
    const dir = await laboratory();
    const state = ["--state", join(dir, "state.json")];
    const get = await runCli([...state, "state", "get", "/services/docker/mysql/app-name1"], dir);
    expect(get).toMatchObject({ code: 0, stdout: '{\n  "image": "mariadb"\n}\n' });
    const explained = await runCli(
      [...state, "state", "get", "--explain", "/services/docker/mysql/app-name1"],
      dir,
    );
    expect(explained.stdout).toBe(
      [
        "lookup of /services/docker/mysql/app-name1 (merge: first)",
        "  1. /services/docker/mysql/app-name1          -",
        "  2. /services/docker/mysql/app-name1/default  -",
        "  3. /services/docker/mysql/default            answered",
        "  4. /services/docker/default                  -",
        "  5. /services/default                         -",
        "  6. /default                                  -",
        'value: {"image":"mariadb"}',
        "",
      ].join("\n"),
    );
  });

  it("--merge deep --explain names the candidate of each field", async () => {
    const dir = await laboratory();
    const { stdout } = await runCli(
      [
        "--state",
        join(dir, "state.json"),
        "state",
        "get",
        "--merge",
        "deep",
        "--explain",
        "/services/docker/postgresql/app-name1",
      ],
      dir,
    );
    expect(stdout).toContain(
      "fields:\n  image  ← /services/docker/postgresql/default\n  version  ← /services/docker/postgresql/app-name1\n",
    );
    expect(stdout).toContain('value: {"image":"postgres","version":"15"}');
  });

  it("a miss exits 1 listing what was tried; --json says found: false", async () => {
    const dir = await laboratory();
    const miss = await runCli(["--state", join(dir, "state.json"), "state", "get", "/nothing/here"], dir);
    expect(miss.code).toBe(1);
    expect(miss.stderr).toBe(
      "labtest: no state value for /nothing/here; tried /nothing/here, /nothing/here/default, /nothing/default, /default\n",
    );
    const json = await runCli(
      ["--json", "--state", join(dir, "state.json"), "state", "get", "/nothing/here"],
      dir,
    );
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ found: false, key: "/nothing/here" });
  });

  it("set and unset write local state; check reaches the store", async () => {
    const dir = await laboratory();
    const env = ["--state", join(dir, "state.json")];
    expect((await runCli([...env, "state", "set", "/default", '{"expiry_days": 3}'], dir)).code).toBe(0);
    expect((await runCli([...env, "state", "get", "/anything"], dir)).stdout).toBe(
      '{\n  "expiry_days": 3\n}\n',
    );
    expect((await runCli([...env, "state", "unset", "/default"], dir)).code).toBe(0);
    expect((await runCli([...env, "state", "get", "/anything"], dir)).code).toBe(1);
    expect((await runCli([...env, "state", "set", "relative", "1"], dir)).stderr).toMatch(
      /state key "relative" is not absolute/,
    );
    expect((await runCli([...env, "state", "check"], dir)).stdout).toBe(
      `state is local/file from ${join(dir, "state.json")}: reachable\n`,
    );
  });
});
