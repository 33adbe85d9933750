import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { gitRepo, writeFiles } from "../support/project.js";

// One configuration, written in every format labtest reads. They must resolve identically.
const yaml = `
labtest:
  app_name: demo
  host: ssh://deploy@lab.example.com:2222
  test_domain: test.example.com
  host_name_pattern: "%(APP_NAME)s-%(INSTANCE_NAME)s"
  use_ssh_config: true
  start_command: npm start
  environment:
    - FOO=bar
    - DEBUG=true
    - MY_HOST=$VIRTUAL_HOST
  services:
    db:
      provider: docker
      service: postgresql
      provision_type: communal
      options:
        version: 16
    search:
      provider: docker
      service: postgresql
      provision_type: shared
      shared_experiment_name: main
`;

const ini = `
[metadata]
name = demo

[labtest]
app_name = demo
host = ssh://deploy@lab.example.com:2222
test_domain = test.example.com
host_name_pattern = %(APP_NAME)s-%(INSTANCE_NAME)s
use_ssh_config = true
start_command = npm start
environment = FOO=bar,DEBUG=true,MY_HOST=$VIRTUAL_HOST

[labtest.services.db]
provider = docker
service = postgresql
provision_type = communal

[labtest.services.db.options]
version = 16

[labtest.services.search]
provider = docker
service = postgresql
provision_type = shared
shared_experiment_name = main
`;

const section = {
  app_name: "demo",
  host: "ssh://deploy@lab.example.com:2222",
  test_domain: "test.example.com",
  host_name_pattern: "%(APP_NAME)s-%(INSTANCE_NAME)s",
  use_ssh_config: true,
  start_command: "npm start",
  environment: { FOO: "bar", DEBUG: "true", MY_HOST: "$VIRTUAL_HOST" },
  services: {
    db: { provider: "docker", service: "postgresql", provision_type: "communal", options: { version: "16" } },
    search: {
      provider: "docker",
      service: "postgresql",
      provision_type: "shared",
      shared_experiment_name: "main",
    },
  },
};
const json = JSON.stringify({ labtest: section }, null, 2);
const packageJson = JSON.stringify({ name: "demo", version: "1.0.0", labtest: section }, null, 2);

describe("configuration formats", () => {
  it("resolves the same configuration from .labtest.yml, .labtest.yaml, setup.cfg, package.json and --config files", async () => {
    const layouts: Array<[Record<string, string>, string | undefined]> = [
      [{ ".labtest.yml": yaml }, undefined],
      [{ ".labtest.yaml": yaml }, undefined],
      [{ "setup.cfg": ini }, undefined],
      [{ "package.json": packageJson }, undefined],
      [{ "conf/labtest.json": json }, "conf/labtest.json"],
      [{ "conf/labtest.ini": ini }, "conf/labtest.ini"],
      [{ "conf/labtest.yaml": yaml }, "conf/labtest.yaml"],
    ];
    const resolved = [];
    for (const [files, configPath] of layouts) {
      const repo = await gitRepo("demo", { origin: "https://git.example.com/demo.git" });
      await writeFiles(repo, files);
      const loaded = await loadConfig({ cwd: repo, ...(configPath ? { configPath } : {}) });
      expect(loaded.file).toBe(join(repo, configPath ?? Object.keys(files)[0] ?? ""));
      resolved.push(loaded.config);
    }
    for (const config of resolved.slice(1)) expect(config).toEqual(resolved[0]);
    expect(resolved[0]).toMatchObject({
      app_name: "demo",
      laboratory: { kind: "ssh", user: "deploy", host: "lab.example.com", port: 2222 },
      host_name_pattern: "{app_name}-{experiment}",
      use_ssh_config: true,
      code_repo_url: "https://git.example.com/demo.git",
      runtime: "local",
      environment: { FOO: "bar", DEBUG: "true", MY_HOST: "$VIRTUAL_HOST" },
      services: {
        db: {
          provider: "docker",
          service: "postgresql",
          provision_type: "communal",
          options: { version: "16" },
        },
        search: { provision_type: "shared", shared_experiment_name: "main", shared_app_name: "demo" },
      },
    });
  });
});
