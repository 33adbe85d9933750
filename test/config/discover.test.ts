import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { ConfigError } from "../../src/errors.js";
import { gitRepo, scratchDir, writeFiles } from "../support/project.js";

describe("configuration discovery", () => {
  it("walks up from the working directory to the first file that has a labtest section", async () => {
    const repo = await gitRepo("walk");
    await writeFiles(repo, {
      "setup.cfg": "[metadata]\nname = walk\n",
      "package.json": JSON.stringify({ name: "walk", labtest: { test_domain: "from-package.example.com" } }),
      "src/deep/nested/.keep": "",
    });
    const loaded = await loadConfig({ cwd: join(repo, "src/deep/nested") });
    expect(loaded.file).toBe(join(repo, "package.json"));
    expect(loaded.config.test_domain).toBe("from-package.example.com");
  });

  it("prefers .labtest.yml, then .labtest.yaml, setup.cfg and package.json in one directory", async () => {
    const repo = await gitRepo("order");
    const files: Record<string, string> = {
      ".labtest.yml": "labtest:\n  test_domain: yml.example.com\n",
      ".labtest.yaml": "labtest:\n  test_domain: yaml.example.com\n",
      "setup.cfg": "[labtest]\ntest_domain = cfg.example.com\n",
      "package.json": JSON.stringify({ labtest: { test_domain: "json.example.com" } }),
    };
    await writeFiles(repo, files);
    for (const winner of Object.keys(files)) {
      const loaded = await loadConfig({ cwd: repo });
      expect(loaded.file).toBe(join(repo, winner));
      const { rm } = await import("node:fs/promises");
      await rm(join(repo, winner));
    }
  });

  it("takes the nearest directory's file over a parent's", async () => {
    const repo = await gitRepo("nearest");
    await writeFiles(repo, {
      ".labtest.yml": "labtest:\n  test_domain: parent.example.com\n",
      "sub/package.json": JSON.stringify({ labtest: { test_domain: "child.example.com" } }),
    });
    expect((await loadConfig({ cwd: join(repo, "sub") })).config.test_domain).toBe("child.example.com");
  });

  it("reports where it looked when no file has a labtest section", async () => {
    const dir = await scratchDir();
    await writeFiles(dir, { "package.json": JSON.stringify({ name: "nothing" }) });
    const error = await loadConfig({ cwd: dir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(
      /no labtest configuration found in .* or any directory above it/,
    );
    expect((error as Error).message).toContain("create .labtest.yml");
  });

  it("runs an app with start_command locally, one without it in docker, unless runtime says", async () => {
    const repo = await gitRepo("runtimes");
    const runtimeOf = async (section: string) => {
      await writeFiles(repo, { ".labtest.yml": `labtest:\n${section}` });
      const loaded = await loadConfig({ cwd: repo });
      return [loaded.config.runtime, loaded.sources.runtime.from];
    };
    expect(await runtimeOf("  start_command: node server.js\n")).toEqual(["local", "default"]);
    expect(await runtimeOf("  test_domain: example.com\n")).toEqual(["docker", "default"]);
    expect(await runtimeOf("  runtime: docker\n  start_command: node server.js\n")).toEqual([
      "docker",
      "file",
    ]);
    await writeFiles(repo, { ".labtest.yml": "labtest:\n  runtime: kubernetes\n" });
    const error = (await loadConfig({ cwd: repo }).catch((e: unknown) => e)) as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.problems[0]?.where).toMatch(/labtest.runtime/);
    expect(error.message + JSON.stringify(error.problems)).toMatch(/local.*docker/);
  });

  it("rejects --config files it cannot read: unknown extension, missing file, no labtest section", async () => {
    const repo = await gitRepo("explicit");
    await writeFiles(repo, { "labtest.toml": "x = 1\n", "other.yml": "something: else\n" });
    await expect(loadConfig({ cwd: repo, configPath: "labtest.toml" })).rejects.toThrow(
      /use a file ending in .yml, .yaml, .json, .cfg, .ini/,
    );
    await expect(loadConfig({ cwd: repo, configPath: "missing.yml" })).rejects.toThrow(/does not exist/);
    await expect(loadConfig({ cwd: repo, configPath: "other.yml" })).rejects.toThrow(
      /has no "labtest" section/,
    );
  });

  it("derives app_name from the git top-level directory and code_repo_url from origin, else the path", async () => {
    const withOrigin = await gitRepo("My_Project", { origin: "git@git.example.com:team/my-project.git" });
    await writeFiles(withOrigin, { "app/.labtest.yml": "labtest: {}\n" });
    const loaded = await loadConfig({ cwd: join(withOrigin, "app") });
    expect(loaded.config.app_name).toMatch(/^my-project-[0-9a-f]{6}$/);
    expect(loaded.config.code_repo_url).toBe("git@git.example.com:team/my-project.git");
    expect(loaded.sources.app_name).toMatchObject({ from: "default" });

    const bare = await gitRepo("plain");
    await writeFiles(bare, { ".labtest.yml": "labtest:\n" });
    const plain = await loadConfig({ cwd: bare });
    expect(plain.config.app_name).toBe("plain");
    expect(plain.config.code_repo_url).toBe(bare);
    expect(plain.config).toMatchObject({
      host: "local",
      laboratory: { kind: "local" },
      test_domain: "localhost",
      host_name_pattern: "{app_name}-{experiment}",
      docker_image_pattern: "{app_name}/{experiment}:latest",
      environment: {},
      services: {},
      use_ssh_config: false,
      verbose: false,
    });
  });

  it("outside git, asks for app_name instead of guessing, and leaves code_repo_url unset", async () => {
    const dir = await scratchDir();
    await writeFiles(dir, { ".labtest.yml": "labtest:\n  test_domain: example.com\n" });
    const error = (await loadConfig({ cwd: dir }).catch((e: unknown) => e)) as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.problems.map((p) => p.where)).toEqual(["labtest.app_name"]);
    // Services need no repository; create and update ask for it.
    await writeFiles(dir, { ".labtest.yml": "labtest:\n  app_name: shop\n" });
    const loaded = await loadConfig({ cwd: dir });
    expect(loaded.config.code_repo_url).toBeNull();
    expect(loaded.sources.code_repo_url).toEqual({
      from: "default",
      detail: `none: ${dir} is not inside a git repository (create and update need it)`,
    });
  });
});
