import { utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { branchConfiguration } from "../../src/experiments/steps.js";
import { runCli } from "../support/cli.js";
import { docker } from "../support/docker.js";
import { testLaboratory } from "../support/laboratory.js";
import { gitRepo, scratchDir, writeFiles } from "../support/project.js";

/** LabTest's docs/reference/backing_services/docker.rst, "Specifying a MySQL database backing service". */
const DOCKER_RST_MYSQL = `labtest:
  app_name: shop
  services:
    mydb:
      provider: docker
      service: mysql
      provision_type: independent
      options:
        initial_data_source: "/backups/bostongov/"
        image: "mysql:5.6"
        wait_for_service: false
        wait_attempts: 6
        wait_timeout: 60
        commands:
          - "--character-set-server=utf8mb4"
          - "--collation-server=utf8mb4_unicode_ci"
        environment:
          - "MYSQL_ALLOW_EMPTY_PASSWORD=true"
          - "MYSQL_DATABASE=drupal"
`;

/**
 * LabTest's docs/reference/backing_services/index.rst, "Sample service configuration", with
 * PostgreSQL (the servers of this laboratory) in place of MySQL, and the options given here.
 */
function sampleService(options: string): string {
  return `labtest:
  app_name: shop
  services:
    mydb:
      provider: docker
      service: postgresql
      provision_type: independent
      options:
${options
  .trim()
  .split("\n")
  .map((line) => `        ${line}`)
  .join("\n")}
`;
}

async function checkConfig(text: string) {
  const repo = await gitRepo("shop");
  await writeFiles(repo, { ".labtest.yml": text });
  return { repo, ...(await runCli(["check-config"], repo)) };
}

describe("LabTest's backing service options (docker.rst)", () => {
  it("the documented MySQL service passes check-config, shown in labtest's names with a note for each", async () => {
    const { code, stdout, stderr } = await checkConfig(DOCKER_RST_MYSQL);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toContain(
      "note: line 9, labtest.services.mydb.options.initial_data_source is LabTest's name for initial_data\n",
    );
    expect(stdout).toContain(
      "note: line 14, labtest.services.mydb.options.commands is LabTest's name for command\n",
    );
    expect(stdout).toMatch(
      /^note: line 11, labtest\.services\.mydb\.options\.wait_for_service is ignored: labtest always waits/m,
    );
    expect(stdout).toMatch(/^ {6}initial_data: \/backups\/bostongov\/$/m);
    expect(stdout).toMatch(/^ {6}image: mysql:5\.6$/m);
    expect(stdout).toMatch(
      /^ {6}command:\n {8}- --character-set-server=utf8mb4\n {8}- --collation-server=utf8mb4_unicode_ci$/m,
    );
    expect(stdout).toMatch(/^ {6}wait_attempts: 6$/m);
    expect(stdout).toMatch(/^ {6}wait_timeout: 60$/m);
    expect(stdout).not.toMatch(/^ +(initial_data_source|commands|wait_for_service):/m);
  });

  it("a LabTest name beside labtest's, or a wait that is not a positive number, is an error", async () => {
    const both = await checkConfig(sampleService("initial_data_source: a.sql\ninitial_data: b.sql"));
    expect(both.code).toBe(2);
    expect(both.stderr).toContain(
      "labtest.services.mydb.options.initial_data_source: is LabTest's name for initial_data, which is set too\n" +
        "      fix: keep initial_data only\n",
    );
    const zero = await checkConfig(sampleService("wait_timeout: 0\nwait_attempts: many"));
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/labtest\.services\.mydb\.options\.wait_timeout: .*0.*\n +fix: /);
    expect(zero.stderr).toMatch(/labtest\.services\.mydb\.options\.wait_attempts: .*many.*\n +fix: /);
  });

  it("a wrong value under LabTest's name is reported under that name", async () => {
    const commands = await checkConfig(sampleService("commands: 5"));
    expect(commands.code).toBe(2);
    expect(commands.stderr).toMatch(/- line 9, labtest\.services\.mydb\.options\.commands: /);
  });

  it("image with a tag, or image and version; a tag and a different version is an error", async () => {
    const tagged = await checkConfig(sampleService('image: "postgres:15"'));
    expect(tagged.code, tagged.stderr).toBe(0);
    const split = await checkConfig(sampleService('image: postgres\nversion: "15"'));
    expect(split.code, split.stderr).toBe(0);
    const clash = await checkConfig(sampleService('image: "postgres:15"\nversion: "16"'));
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain("labtest.services.mydb.options.version: ");
    expect(clash.stderr).toMatch(/image postgres:15 runs version 15/);
  });

  it("initial_data_source loads the newest file of its directory and commands reach the server's command line", async () => {
    const lab = await testLaboratory();
    const dumps = await scratchDir();
    await writeFile(join(dumps, "monday.sql"), "CREATE TABLE monday (day text);\n");
    await writeFile(join(dumps, "tuesday.sql"), "CREATE TABLE tuesday (day text);\n");
    await utimes(join(dumps, "monday.sql"), new Date("2020-01-06"), new Date("2020-01-06"));
    const repo = await gitRepo("shop");
    await writeFiles(repo, {
      ".labtest.yml": sampleService(`
initial_data_source: ${dumps}/
wait_for_service: true
wait_timeout: 600
wait_attempts: 10
commands:
  - "-c"
  - "max_connections=37"`),
    });
    const env = { ...process.env, LABTEST_HOME: lab.home };
    const cli = (...argv: string[]) => runCli(["--state", lab.statePath, ...argv], repo, env);
    const up = await cli("services", "up", "-e", "main");
    expect(up.code, up.stderr).toBe(0);

    const [status] = await lab.services.list();
    const container = await docker.getContainer(status?.server ?? "").inspect();
    expect(container.Config.Cmd).toEqual(["-c", "max_connections=37"]);
    const vars = JSON.parse(
      (await cli("--json", "services", "env", "--host", "-e", "main")).stdout,
    ) as Record<string, string>;
    const client = new pg.Client({ connectionString: vars.MYDB_URL });
    await client.connect();
    try {
      expect((await client.query("SHOW max_connections")).rows[0].max_connections).toBe("37");
      const tables = await client.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
      expect(tables.rows.map((r) => r.tablename)).toEqual(["tuesday"]);
    } finally {
      await client.end();
    }
  });

  it.each([
    ["wait_timeout", "wait_timeout: 3", "wait_timeout (now 3 s)"],
    ["wait_attempts", "wait_timeout: 600\nwait_attempts: 1", "wait_attempts (now 1)"],
  ])("%s bounds how long labtest waits for a server to answer", async (_, wait, said) => {
    const lab = await testLaboratory();
    const repo = await gitRepo("shop");
    // The server listens on another port inside its container, so it never answers.
    await writeFiles(repo, { ".labtest.yml": sampleService(`${wait}\ncommands: ["-c", "port=5499"]`) });
    const env = { ...process.env, LABTEST_HOME: lab.home };
    const started = Date.now();
    const up = await runCli(["--state", lab.statePath, "services", "up", "-e", "main"], repo, env);
    const seconds = (Date.now() - started) / 1000;
    expect(up.code).not.toBe(0);
    expect(up.stderr).toMatch(/postgresql server .* did not become ready/);
    expect(up.stderr).toContain(said);
    expect(seconds).toBeLessThan(40);
  });

  it("check-config notes what the laboratory will refuse or must allow: mysql:5.6, and initial data at an absolute path", async () => {
    const { stdout } = await checkConfig(DOCKER_RST_MYSQL);
    expect(stdout).toMatch(
      /^note: line 10, labtest\.services\.mydb\.options\.image: mysql:5\.6 is MySQL 5\.6, older than 5\.7\.8, .*the laboratory refuses it/m,
    );
    expect(stdout).toMatch(
      /^note: line 9, labtest\.services\.mydb\.options\.initial_data_source: \/backups\/bostongov\/ is read on the laboratory .*\/services\/initial_data\/directories\/shop/m,
    );
    const current = DOCKER_RST_MYSQL.replace("/backups/bostongov/", "dumps/").replace(
      "mysql:5.6",
      "mysql:5.7",
    );
    expect((await checkConfig(current)).stdout).not.toMatch(/older than|read on the laboratory/);
  });
});

/** LabTest's docs/reference/builtin_build_process.rst: build_provider local, and a container provider. */
function builtinBuild(containerProvider: string): string {
  return `labtest:
  app_name: shop
  build_provider: local
  container_provider: ${containerProvider}
  code_repo_url: git@github.com:CityOfBoston/testdemo.git
  app_build_image: drydock/u16nodall
  app_build_command: ./bin/app-build
`;
}

describe("LabTest's build_provider and container_provider (configuration.rst, builtin_build_process.rst)", () => {
  it.each(["local", "aws"])(
    "container_provider: %s and build_provider are ignored, each with a note; the app still runs in a container",
    async (containerProvider) => {
      const { code, stdout, stderr } = await checkConfig(builtinBuild(containerProvider));
      expect(stderr).toBe("");
      expect(code).toBe(0);
      expect(stdout).toMatch(
        /^note: line 4, labtest\.container_provider is ignored: labtest keeps and runs an experiment's image on the laboratory/m,
      );
      expect(stdout).toMatch(
        /^note: line 3, labtest\.build_provider is ignored: labtest builds on the laboratory/m,
      );
      expect(stdout).toMatch(/^runtime: docker +# default: docker/m);
      expect(stdout).not.toMatch(/^(build_provider|container_provider):/m);
    },
  );
});

// labtest's own: LabTest had only click's auto_envvar_prefix (LABTEST_CONFIG, LABTEST_VERBOSE).
describe("labtest's LABTEST_<OPTION> environment variables, for LabTest's options", () => {
  const FILE = `labtest:
  app_name: shop
  test_domain: test.example.com
  start_command: node server.js
  environment:
    - FOO=from the file
`;
  const VARIABLES = {
    LABTEST_TEST_DOMAIN: "qa.example.com",
    LABTEST_USE_SSH_CONFIG: "yes",
    LABTEST_ENVIRONMENT: "FOO=bar,TEST=true",
  };

  it("set options over the file, and check-config says where each came from", async () => {
    const repo = await gitRepo("shop");
    await writeFiles(repo, { ".labtest.yml": FILE });
    const { code, stdout, stderr } = await runCli(["check-config"], repo, { ...process.env, ...VARIABLES });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^test_domain: qa\.example\.com +# environment: LABTEST_TEST_DOMAIN$/m);
    expect(stdout).toMatch(/^use_ssh_config: true +# environment: LABTEST_USE_SSH_CONFIG$/m);
    expect(stdout).toMatch(
      /^environment: +# environment: LABTEST_ENVIRONMENT\n {2}FOO: bar\n {2}TEST: "true"$/m,
    );
    expect(stdout).toMatch(/^start_command: node server\.js +# \.labtest\.yml:4$/m);
  });

  it("still hold when the laboratory reads the branch's configuration", async () => {
    const repo = await gitRepo("shop");
    await writeFiles(repo, { ".labtest.yml": FILE });
    const local = await loadConfig({ cwd: repo, env: VARIABLES });
    const branch = await branchConfiguration(local, repo, repo);
    expect(branch.config).toMatchObject({ test_domain: "qa.example.com", environment: { FOO: "bar" } });
    expect(branch.sources.test_domain).toEqual({ from: "environment", variable: "LABTEST_TEST_DOMAIN" });
  });

  it("a wrong value is an error naming the variable, and nothing runs", async () => {
    const repo = await gitRepo("shop");
    await writeFiles(repo, { ".labtest.yml": FILE });
    const { code, stderr } = await runCli(["check-config"], repo, {
      ...process.env,
      LABTEST_RUNTIME: "kubernetes",
    });
    expect(code).toBe(2);
    expect(stderr).toMatch(/the LABTEST_ environment variables are invalid/);
    expect(stderr).toMatch(/environment variable LABTEST_RUNTIME: unknown runtime "kubernetes"/);
    expect(stderr).toMatch(/or unset it/);
  });
});

/** The three example configurations of LabTest's docs/reference/configuration.rst, as written there. */
const CONFIGURATION_RST = {
  "setup.cfg": `[labtest]
app_name = testing
host = 10.2.3.4
use_ssh_config = true
code_repo_url = git@github.com:CityOfBoston/testdemo.git
app_build_image = drydock/u16nodall
app_build_command = ./bin/app-build
test_domain = test.example.com
environment = FOO=bar,TEST=true,DEBUG=true,MY_HOST=$VIRTUAL_HOST
`,
  ".labtest.yml": `labtest:
  app_name: testing
  host: 10.2.3.4
  use_ssh_config: true
  code_repo_url: git@github.com:CityOfBoston/testdemo.git
  app_build_image: drydock/u16nodall
  app_build_command: ./bin/app-build
  test_domain: test.example.com
  environment:
    - FOO=bar
    - TEST=true
    - DEBUG=true
    - MY_HOST=$VIRTUAL_HOST
`,
  "package.json": JSON.stringify({
    labtest: {
      app_name: "testing",
      host: "10.2.3.4",
      use_ssh_config: true,
      code_repo_url: "git@github.com:CityOfBoston/testdemo.git",
      test_domain: "test.example.com",
      app_build_image: "drydock/u16nodall",
      app_build_command: "./bin/app-build",
      environment: ["FOO=bar", "TEST=true", "DEBUG=true", "MY_HOST=$VIRTUAL_HOST"],
    },
  }),
};

describe("LabTest's example configurations (configuration.rst)", () => {
  it.each(Object.keys(CONFIGURATION_RST))(
    "%s passes check-config and means the same as the others",
    async (file) => {
      const repo = await gitRepo("testing");
      await writeFiles(repo, { [file]: CONFIGURATION_RST[file as keyof typeof CONFIGURATION_RST] });
      const { code, stderr } = await runCli(["check-config"], repo);
      expect(stderr).toBe("");
      expect(code).toBe(0);
      const { config } = await loadConfig({ cwd: repo });
      expect(config).toMatchObject({
        app_name: "testing",
        laboratory: { kind: "ssh", host: "10.2.3.4" },
        use_ssh_config: true,
        code_repo_url: "git@github.com:CityOfBoston/testdemo.git",
        app_build_image: "drydock/u16nodall",
        app_build_command: "./bin/app-build",
        test_domain: "test.example.com",
        environment: { FOO: "bar", TEST: "true", DEBUG: "true", MY_HOST: "$VIRTUAL_HOST" },
      });
    },
  );
});

/** LabTest's docs/reference/backing_services/index.rst, "Pre-existing Services": a shared server given through environment. */
const INDEX_RST_PRE_EXISTING = `labtest:
  environment:
    - MEMCACHE_URL=10.20.4.121:11211
`;

/** LabTest's docs/tutorials/containerizing.rst: VizWiz's package.json, its labtest section as the tutorial ends it. */
const CONTAINERIZING_RST_PACKAGE = JSON.stringify({
  name: "vizwiz",
  version: "1.0.0",
  description: "A data visualization widget library",
  labtest: {
    app_name: "vizwiz",
    host: "test",
    use_ssh_config: true,
    test_domain: "digital-test.boston.gov",
    code_repo_url: "git@github.com:CityOfBoston/vizwiz.git",
    app_build_image: "drydock/u16nodall",
    app_build_command: "./buildapp",
  },
});

describe("LabTest's other documented configurations", () => {
  it("index.rst's pre-existing service reaches the app's environment as written", async () => {
    const { code, stderr } = await checkConfig(INDEX_RST_PRE_EXISTING);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const repo = await gitRepo("shop");
    await writeFiles(repo, { ".labtest.yml": INDEX_RST_PRE_EXISTING });
    expect((await loadConfig({ cwd: repo })).config.environment).toEqual({
      MEMCACHE_URL: "10.20.4.121:11211",
    });
  });

  it("containerizing.rst's package.json passes check-config", async () => {
    const repo = await gitRepo("vizwiz");
    await writeFiles(repo, { "package.json": CONTAINERIZING_RST_PACKAGE });
    const { code, stderr } = await runCli(["check-config"], repo);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect((await loadConfig({ cwd: repo })).config).toMatchObject({
      app_name: "vizwiz",
      laboratory: { kind: "ssh", host: "test" },
      test_domain: "digital-test.boston.gov",
      app_build_command: "./buildapp",
    });
  });

  it("a service without provision_type in a file written for LabTest gets a note: LabTest's default was independent", async () => {
    const written = `labtest:
  app_name: shop
  services:
    mydb:
      provider: docker
      service: postgresql
      options:
        wait_timeout: 60
        wait_for_service: true
    cache:
      provider: docker
      service: redis
      provision_type: independent
`;
    const { code, stdout } = await checkConfig(written);
    expect(code).toBe(0);
    expect(stdout).toContain(
      "note: line 4, labtest.services.mydb has no provision_type: labtest's default is communal, LabTest's was independent (set provision_type: independent to keep a server per experiment)\n",
    );
    expect(stdout).not.toMatch(/services\.cache has no provision_type/);
    // A file with none of LabTest's spellings is labtest's own: no note.
    const own = await checkConfig(written.replace("        wait_for_service: true\n", ""));
    expect(own.stdout).not.toContain("has no provision_type");
  });
});
