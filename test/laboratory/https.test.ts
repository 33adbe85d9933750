import { stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, test } from "vitest";
import { chosenLaboratory } from "../../src/cli/laboratory.js";
import { credentialsFile, readCredentials } from "../../src/laboratory/credentials.js";
import { EmbeddedLaboratory } from "../../src/laboratory/index.js";
import { Secrets } from "../../src/secrets/index.js";
import { runCli } from "../support/cli.js";
import { ageSecrets, testLaboratory } from "../support/laboratory.js";
import { scratchDir } from "../support/project.js";
import { laptopEnv, login, servedLaboratory } from "../support/remote.js";

/** A laboratory served over HTTPS with a real token store; a laptop's environment; an admin token. */
async function remoteLaboratory(port = 0) {
  const lab = await testLaboratory();
  await ageSecrets(lab);
  // What the laboratory decrypts with: its own identity, in its home.
  const secrets = new Secrets({ state: lab.state, home: lab.home });
  const laboratory = new EmbeddedLaboratory({
    env: { ...process.env, LABTEST_HOME: lab.home },
    cwd: lab.home,
    statePath: lab.statePath,
  });
  const served = await servedLaboratory(lab.home, laboratory, port);
  const admin = served.tokens.create({ name: "alice", scope: "admin" }).token;
  return { ...served, laptop: await laptopEnv(), admin, secrets };
}

test("login pins the laboratory's CA only when --fingerprint names it; the token goes to a file only its owner reads", async () => {
  const { server, fingerprint, laptop, admin } = await remoteLaboratory();

  const unconfirmed = await login(server, laptop, admin);
  expect(unconfirmed.code).toBe(77);
  expect(unconfirmed.stderr).toContain(`certificate authority ${fingerprint} was not confirmed`);
  expect(unconfirmed.stderr).toContain(`--token - --fingerprint ${fingerprint}`);
  const wrong = await login(server, laptop, admin, "--fingerprint", "SHA256:AAAA");
  expect(wrong.code).toBe(77);
  expect(wrong.stderr).toContain(`presented ${fingerprint}`);
  await expect(stat(credentialsFile(laptop))).rejects.toThrow(/ENOENT/);

  const onCommandLine = await runCli(["login", server.url, "--token", admin], process.cwd(), laptop);
  expect(onCommandLine.code).toBe(2);
  expect(onCommandLine.stderr).toContain("shell's history");
  expect(onCommandLine.stderr).not.toContain(admin);

  const accepted = await login(server, laptop, admin, "--fingerprint", fingerprint);
  expect(accepted).toMatchObject({
    code: 0,
    stdout: `logged in to ${server.url} (certificate authority ${fingerprint} pinned)\n`,
  });
  expect((await stat(credentialsFile(laptop))).mode & 0o777).toBe(0o600);
  expect((await stat(laptop.LABTEST_CONFIG_DIR ?? "")).mode & 0o777).toBe(0o700);
  expect(await readCredentials(laptop)).toEqual([
    { url: server.url, token: admin, fingerprint, ca: expect.stringContaining("BEGIN CERTIFICATE") },
  ]);

  const listed = await runCli(["--lab", server.url, "list", "--all", "--json"], process.cwd(), laptop);
  expect(listed).toMatchObject({ code: 0, stdout: `${JSON.stringify({ experiments: [] }, null, 2)}\n` });

  const out = await runCli(["logout"], process.cwd(), laptop);
  expect(out).toMatchObject({ code: 0, stdout: `logged out of ${server.url}\n` });
  expect(await readCredentials(laptop)).toEqual([]);
});

test("confirmed at the terminal, the CA is pinned; declined, nothing is stored", async () => {
  const { server, fingerprint, laptop, admin } = await remoteLaboratory();
  const questions: string[] = [];
  const at = (answer: string) => ({
    stdout: () => undefined,
    stderr: () => undefined,
    cwd: process.cwd(),
    env: laptop,
    isTTY: true,
    readStdin: async () => admin,
    askTerminal: async (question: string) => {
      questions.push(question);
      return answer;
    },
  });
  const { main } = await import("../../src/cli/main.js");
  expect(await main(["login", server.url, "--token", "-"], at("n"))).toBe(77);
  expect(await readCredentials(laptop)).toEqual([]);
  expect(await main(["login", server.url, "--token", "-"], at("y"))).toBe(0);
  expect(questions[0]).toContain(`fingerprint ${fingerprint}`);
  expect((await readCredentials(laptop)).map((c) => c.fingerprint)).toEqual([fingerprint]);
});

test("a laboratory that comes back with another CA is refused as a changed identity, until logged out and in again", async () => {
  const first = await remoteLaboratory();
  expect(
    (await login(first.server, first.laptop, first.admin, "--fingerprint", first.fingerprint)).code,
  ).toBe(0);
  await first.stop();

  const impostor = await remoteLaboratory(first.server.port);
  expect(impostor.fingerprint).not.toBe(first.fingerprint);
  const refused = await runCli(["--lab", first.server.url, "list", "--all"], process.cwd(), first.laptop);
  expect(refused.code).toBe(77);
  expect(refused.stdout).toBe("");
  expect(refused.stderr).toContain(`REMOTE LABORATORY IDENTITY HAS CHANGED: ${first.server.url}`);
  expect(refused.stderr).toContain(`pinned ${first.fingerprint}, presented ${impostor.fingerprint}`);
  expect(refused.stderr).toContain(`labtest logout ${first.server.url} && labtest login ${first.server.url}`);

  expect((await runCli(["logout", first.server.url], process.cwd(), first.laptop)).code).toBe(0);
  expect(
    (await login(impostor.server, first.laptop, impostor.admin, "--fingerprint", impostor.fingerprint)).code,
  ).toBe(0);
  expect((await runCli(["--lab", first.server.url, "list", "--all"], process.cwd(), first.laptop)).code).toBe(
    0,
  );
});

test("a revoked token is refused with the laboratory's message and exit code 77; LABTEST_TOKEN with LABTEST_FINGERPRINT serves CI without login", async () => {
  const { server, tokens, fingerprint, laptop, admin } = await remoteLaboratory();
  const ci = tokens.create({ name: "ci", scope: "read" }).token;
  const asCi = { ...laptop, LABTEST_HOST: server.url, LABTEST_TOKEN: ci };

  const notPinned = await runCli(["list", "--all"], process.cwd(), asCi);
  expect(notPinned.code).toBe(77);
  expect(notPinned.stderr).toContain(`not logged in to the laboratory at ${server.url}`);
  expect(notPinned.stderr).toContain("LABTEST_FINGERPRINT");
  const wrongPin = await runCli(["list", "--all"], process.cwd(), {
    ...asCi,
    LABTEST_FINGERPRINT: "SHA256:AAAA",
  });
  expect(wrongPin.code).toBe(77);
  expect(wrongPin.stderr).toContain(`presents the certificate authority ${fingerprint}`);
  const pinned = { ...asCi, LABTEST_FINGERPRINT: fingerprint };
  expect(await runCli(["list", "--all"], process.cwd(), pinned)).toMatchObject({
    code: 0,
    stdout: "no experiments on this laboratory\n",
  });

  // LABTEST_TOKEN replaces a stored token, under the stored pin.
  expect((await login(server, laptop, admin, "--fingerprint", fingerprint)).code).toBe(0);
  tokens.revoke("ci");
  const revoked = await runCli(["list", "--all", "--json"], process.cwd(), {
    ...laptop,
    LABTEST_HOST: server.url,
    LABTEST_TOKEN: ci,
  });
  expect(revoked.code).toBe(77);
  const { error } = JSON.parse(revoked.stdout) as { error: { type: string; message: string } };
  expect(error.type).toBe("AuthenticationError");
  expect(error.message).toMatch(/revoked/);
  expect(revoked.stderr).toBe("");
});

test("which laboratory: --lab, else LABTEST_HOST, else the configuration's host — which a broken configuration still gives gc", async () => {
  const { server, fingerprint, laptop, admin, requests } = await remoteLaboratory();
  expect((await login(server, laptop, admin, "--fingerprint", fingerprint)).code).toBe(0);
  const app = await scratchDir("labtest-app-");
  // Broken but for its host: an unknown option and an app name labtest refuses.
  await writeFile(
    join(app, ".labtest.yml"),
    `labtest:\n  host: ${server.url}\n  app_name: Not_Valid\n  colour: blue\n`,
  );
  const io = (env: NodeJS.ProcessEnv) => ({
    cwd: app,
    env,
    isTTY: false,
    stdout: () => undefined,
    stderr: () => undefined,
    readStdin: async () => "",
  });

  expect(await chosenLaboratory(io(laptop), {}, undefined)).toEqual({ kind: "https", url: `${server.url}/` });
  expect(await chosenLaboratory(io({ ...laptop, LABTEST_HOST: "local" }), {}, undefined)).toEqual({
    kind: "local",
  });
  expect(
    await chosenLaboratory(
      io({ ...laptop, LABTEST_HOST: "local" }),
      { lab: "https://other.example" },
      undefined,
    ),
  ).toEqual({
    kind: "https",
    url: "https://other.example/",
  });
  const bad = await runCli(["--lab", "ftp://lab", "gc", "--dry-run"], app, laptop);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain("--lab");

  // gc is an administrator's: it reaches the laboratory the broken configuration names, and runs there.
  const gc = await runCli(["gc", "--dry-run", "--json"], app, laptop);
  expect(gc.stderr).toBe("");
  expect(gc.code).toBe(0);
  expect(JSON.parse(gc.stdout)).toEqual({ dryRun: true, removals: [] });
  expect(requests.at(-1)).toMatch(/ alice POST \/api\/v1\/gc 200 /);
});

test("a laboratory that is not there is named with the fix", async () => {
  const { server, fingerprint, laptop, admin, stop } = await remoteLaboratory();
  expect((await login(server, laptop, admin, "--fingerprint", fingerprint)).code).toBe(0);
  await stop();
  const refused = await runCli(["--lab", server.url, "list", "--all"], process.cwd(), laptop);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain(`cannot reach the laboratory at ${server.url}`);
  expect(refused.stderr).toContain(`nothing accepts connections on port ${server.port}`);
  const unknown = await runCli(
    ["login", "https://no-such-host.invalid", "--token", "-"],
    process.cwd(),
    laptop,
    "x",
  );
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toContain("the name no-such-host.invalid cannot be resolved");
});

test("encrypt on a laptop encrypts for the laboratory's recipients, which the laboratory decrypts; the plaintext never travels", async () => {
  const { server, fingerprint, laptop, admin, secrets, requests } = await remoteLaboratory();
  expect((await login(server, laptop, admin, "--fingerprint", fingerprint)).code).toBe(0);
  const home = await scratchDir("labtest-laptop-home-");
  const encrypted = await runCli(
    ["--lab", server.url, "encrypt", "-"],
    process.cwd(),
    { ...laptop, LABTEST_HOME: home },
    "PASSWORD=correct-horse-battery\n",
  );
  expect(encrypted.code, encrypted.stderr).toBe(0);
  const [key, value = ""] = encrypted.stdout.trim().split(/=(.*)/s);
  expect(key).toBe("PASSWORD");
  expect(await secrets.reveal({ PASSWORD: value }, (k) => k)).toEqual({ PASSWORD: "correct-horse-battery" });
  expect(requests.map((line) => line.split(" ").slice(2, 4).join(" "))).toContain(
    "GET /api/v1/secrets/recipients",
  );
});

test("--state, which names this machine's state, is refused with a remote laboratory rather than ignored", async () => {
  const { server, fingerprint, laptop, admin } = await remoteLaboratory();
  expect((await login(server, laptop, admin, "--fingerprint", fingerprint)).code).toBe(0);
  const refused = await runCli(
    ["--lab", server.url, "--state", "/tmp/state.json", "state", "get", "/x"],
    process.cwd(),
    laptop,
  );
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain(`--state: the laboratory at ${server.url} keeps its own state`);
});
