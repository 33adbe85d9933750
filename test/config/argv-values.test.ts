import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { gitRepo, scratchDir, writeFiles } from "../support/project.js";

/** check-config of a repository whose .labtest.yml sets `code_repo_url` (YAML-quoted). */
async function checkRepoUrl(url: string, origin?: string) {
  const repo = await gitRepo("shop", origin === undefined ? {} : { origin });
  await writeFiles(repo, {
    ".labtest.yml": `labtest:\n  app_name: shop\n${url ? `  code_repo_url: ${JSON.stringify(url)}\n` : ""}`,
  });
  return { repo, ...(await runCli(["check-config"], repo)) };
}

describe("code_repo_url", () => {
  it("is refused when git would read it as an option, naming the key and the fix", async () => {
    const marker = join(await scratchDir(), "pwned");
    const { repo, code, stdout, stderr } = await checkRepoUrl(`--upload-pack=touch ${marker}`);
    expect(stdout).toBe("");
    expect(code).toBe(2);
    expect(stderr).toBe(
      `labtest: configuration ${join(repo, ".labtest.yml")} is invalid (1 problem):\n` +
        `  - line 3, labtest.code_repo_url: "--upload-pack=touch ${marker}" starts with "-": git would read it as an option\n` +
        "      fix: use an https://, http://, ssh://, git:// or file:// URL, user@host:path, or a local path\n",
    );
  });

  it.each([
    ["ext::sh -c touch% /tmp/x", /uses the remote helper "ext::", which runs programs on the laboratory/],
    ["fd::3", /uses the remote helper "fd::"/],
    ["ftp://example.com/shop.git", /uses the scheme ftp:\/\/, which is not allowed/],
    ["foo://example.com/shop.git", /uses the scheme foo:\/\/, which is not allowed/],
    ["ssh://-oProxyCommand=touch%20x/shop", /has "-" right after ssh:\/\/: ssh would read it as an option/],
    ["-oProxyCommand=touch x@lab:shop", /starts with "-": git would read it as an option/],
    ["https://example.com/shop\n.git", /contains a control character/],
  ])("refuses %j", async (url, message) => {
    const { code, stderr } = await checkRepoUrl(url);
    expect(code).toBe(2);
    expect(stderr).toMatch(/labtest\.code_repo_url: /);
    expect(stderr).toMatch(message);
  });

  it("is refused when derived from an origin remote git would run a helper for", async () => {
    const { code, stderr } = await checkRepoUrl("", "ext::sh -c touch% /tmp/x");
    expect(code).toBe(2);
    expect(stderr).toMatch(
      /labtest\.code_repo_url: the origin remote "ext::sh -c touch% \/tmp\/x" uses the remote helper "ext::"/,
    );
  });

  it.each([
    "https://github.com/acme/shop.git",
    "http://git.internal/shop.git",
    "ssh://git@github.com:22/acme/shop.git",
    "git://git.internal/shop.git",
    "file:///srv/git/shop.git",
    "git@github.com:acme/shop.git",
    "github.com:acme/shop.git",
    "/srv/git/shop.git",
    "../shop",
    "./-odd-but-a-path",
  ])("accepts %j", async (url) => {
    const { code, stdout, stderr } = await checkRepoUrl(url);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toContain(`code_repo_url: ${url}`);
  });
});

/** check-config of a repository with this labtest section (YAML, indented under `labtest:`). */
async function checkSection(yaml: string) {
  const repo = await gitRepo("shop");
  await writeFiles(repo, { ".labtest.yml": `labtest:\n  app_name: shop\n${yaml}` });
  return runCli(["check-config"], repo);
}

describe("other values that reach a program's arguments or path", () => {
  it.each(["-oProxyCommand=touch,x@lab", "ssh://-oProxyCommand=x@lab", "-vvv"])(
    "host %j is refused: ssh would read it as an option",
    async (host) => {
      const { code, stderr } = await checkSection(`  host: ${JSON.stringify(host)}\n`);
      expect(code).toBe(2);
      expect(stderr).toMatch(
        /labtest\.host: .* names a user or host starting with "-": ssh would read it as an option/,
      );
    },
  );

  it.each(["../../../tmp/evil", "16/../../../tmp", "-x", ".."])(
    "a service version %j is refused: it names the programs' directory",
    async (version) => {
      const { code, stderr } = await checkSection(
        `  services:\n    db:\n      service: postgresql\n      options:\n        version: ${JSON.stringify(version)}\n`,
      );
      expect(code).toBe(2);
      expect(stderr).toMatch(/labtest\.services\.db\.options\.version: .* is not a version/);
    },
  );

  it.each(["16", "10.11", "7.2-alpine", "15"])("a service version %j is accepted", async (version) => {
    const { code, stderr } = await checkSection(
      `  services:\n    db:\n      service: postgresql\n      options:\n        version: ${version}\n`,
    );
    expect(stderr).toBe("");
    expect(code).toBe(0);
  });
});
