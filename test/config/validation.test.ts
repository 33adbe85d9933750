import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { problemsOf } from "../support/config.js";
import { gitRepo, writeFiles } from "../support/project.js";

describe("configuration validation", () => {
  it("reports every problem at once, each with its line, key and a fix", async () => {
    const problems = await problemsOf(`labtest:
  app_nmae: shop
  verbose: maybe
  environment: 42
  services:
    db:
      provider: dokcer
      service: postgres
      provision_type: comunal
    search:
      service: postgresql
      provision_type: shared
`);
    expect(problems).toEqual([
      expect.objectContaining({
        where: "line 2, labtest.app_nmae",
        what: 'unknown option "app_nmae" (did you mean "app_name"?)',
        fix: "rename it to app_name",
      }),
      expect.objectContaining({ where: "line 3, labtest.verbose", what: 'expected a boolean, got "maybe"' }),
      expect.objectContaining({
        where: "line 4, labtest.environment",
        what: "expected a list of KEY=VALUE or a mapping, got number",
      }),
      expect.objectContaining({
        where: "line 7, labtest.services.db.provider",
        what: 'unknown provider "dokcer" (did you mean "docker"?)',
        fix: "use one of local, docker, external, aws",
      }),
      expect.objectContaining({
        where: "line 8, labtest.services.db.service",
        what: 'unknown service "postgres" (did you mean "postgresql"?)',
      }),
      expect.objectContaining({
        where: "line 9, labtest.services.db.provision_type",
        what: 'unknown provision type "comunal" (did you mean "communal"?)',
      }),
      expect.objectContaining({
        where: "line 10, labtest.services.search.shared_experiment_name",
        what: "a shared service needs the experiment whose instance it uses",
        fix: "add shared_experiment_name: <experiment>",
      }),
    ]);
  });

  it("checks environment entries one by one", async () => {
    const problems = await problemsOf(`labtest:
  environment:
    - GOOD=1
    - not a pair
    - 1BAD=x
    - GOOD=2
`);
    expect(problems.map((p) => `${p.where}: ${p.what}`)).toEqual([
      'line 4, labtest.environment[1]: entry "not a pair" is not KEY=VALUE',
      'line 5, labtest.environment[2]: "1BAD" is not a valid environment variable name',
      "line 6, labtest.environment[3]: GOOD is set twice",
    ]);
  });

  it("keeps values containing = whole and accepts a mapping", async () => {
    const repo = await gitRepo("app");
    await writeFiles(repo, {
      ".labtest.yml": "labtest:\n  environment:\n    QUERY: a=b&c=d\n    PORT: 8000\n    ON: true\n",
    });
    expect((await loadConfig({ cwd: repo })).config.environment).toEqual({
      QUERY: "a=b&c=d",
      PORT: "8000",
      ON: "true",
    });
  });

  it("rejects unknown placeholders in patterns, in both LabTest's and labtest's form", async () => {
    const problems = await problemsOf(`labtest:
  host_name_pattern: "%(APP_NAME)s-%(COMMIT)s"
  docker_image_pattern: "{app_name}/{sha}"
`);
    expect(problems.map((p) => p.what)).toEqual([
      "unknown placeholder %(COMMIT)s (known: APP_NAME, INSTANCE_NAME, EXPERIMENT, BRANCH_NAME, RELEASE)",
      "unknown placeholder {sha} (known: {app_name}, {experiment}, {branch}, {release})",
    ]);
  });

  it("rejects bad hosts, domains, app and service names, and provider/provision mismatches", async () => {
    const problems = await problemsOf(`labtest:
  app_name: My Shop
  host: ftp://lab.example.com
  test_domain: "not a domain"
  services:
    9lives: { service: redis }
    db: { provider: external, service: postgresql, provision_type: independent }
    cache: { service: redis, shared_experiment_name: main }
    my-db: { service: mysql }
    my_db: { service: mysql }
`);
    expect(problems.map((p) => `${p.where}: ${p.what}`)).toEqual([
      expect.stringMatching(/^line 2, labtest\.app_name: "My Shop" is not a valid app name/),
      expect.stringMatching(/^line 3, labtest\.host: scheme ftp:\/\/ is not supported/),
      expect.stringMatching(/^line 4, labtest\.test_domain: "not a domain" is not a domain name/),
      expect.stringMatching(/^line 6, labtest\.services\.9lives: "9lives" is not a valid service name/),
      expect.stringMatching(
        /^line 7, labtest\.services\.db\.provision_type: the external provider serves communal tenants only/,
      ),
      expect.stringMatching(
        /^line 8, labtest\.services\.cache\.shared_experiment_name: shared_experiment_name is only used with provision_type: shared/,
      ),
      expect.stringMatching(
        /^line 10, labtest\.services\.my_db: services "my-db" and "my_db" would both set MY_DB_URL/,
      ),
    ]);
    expect(problems[0]?.fix).toBe("use app_name: my-shop");
  });

  it("reports YAML syntax errors with their line", async () => {
    const repo = await gitRepo("app");
    await writeFiles(repo, { ".labtest.yml": "labtest:\n  app_name: [unclosed\n" });
    await expect(loadConfig({ cwd: repo })).rejects.toThrow(
      /is not valid YAML \(1 problem\):\n {2}- line \d+: /,
    );
  });
});
