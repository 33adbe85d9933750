import { expect, onTestFinished, test } from "vitest";
import type { Identity } from "../../src/laboratory/identity.js";
import type { ExperimentStatus, Laboratory } from "../../src/laboratory/index.js";
import { EmbeddedLaboratory, PROTOCOL_VERSION as v } from "../../src/laboratory/index.js";
import { AuditLog, auditedLaboratory } from "../../src/server/audit.js";
import { scratchDir } from "../support/project.js";

/** The embedded laboratory of a scratch home as `identity` uses it, and that home's audit log. */
async function labAs(identity: Identity) {
  const home = await scratchDir("labtest-audit-");
  const env = { ...process.env, LABTEST_HOME: home };
  const embedded = new EmbeddedLaboratory({ env, cwd: home });
  const log = new AuditLog(home);
  onTestFinished(async () => {
    log.close();
    await embedded.close();
  });
  return { embedded, log, lab: auditedLaboratory(embedded, identity, log, "203.0.113.7") };
}

const ADMIN: Identity = { name: "alice", scope: "admin", apps: [] };
const CI_SHOP: Identity = { name: "ci-shop", scope: "deploy", apps: ["shop"] };

test("each request of scope deploy or admin is recorded with who made it, from where, and how it ended; reads are not", async () => {
  const { lab, log } = await labAs(ADMIN);
  const before = new Date().toISOString();
  await lab.tokenCreate({ v, name: "ci-shop", scope: "deploy", apps: ["shop"] });
  await expect(lab.tokenCreate({ v, name: "ci-shop", scope: "read" })).rejects.toThrow(
    /already a token named ci-shop/,
  );
  await lab.tokenList({ v });
  await lab.tokenRevoke({ v, name: "ci-shop" });
  // Nothing to delete is an answer, not an error (LabTest's commands are idempotent): recorded too.
  expect(await lab.delete({ v, app: "shop", name: "nothing" })).toMatchObject({ deleted: null });
  await lab.list({ v });
  await lab.stateGet({ v, key: "/default" });

  const entries = log.read();
  expect(entries.map(({ who, what, target, from }) => [who, what, target, from])).toEqual([
    ["alice", "tokenCreate", "ci-shop", "203.0.113.7"],
    ["alice", "tokenCreate", "ci-shop", "203.0.113.7"],
    ["alice", "tokenList", "", "203.0.113.7"],
    ["alice", "tokenRevoke", "ci-shop", "203.0.113.7"],
    ["alice", "delete", "shop/nothing", "203.0.113.7"],
  ]);
  expect(entries.map((e) => e.result.split(":")[0])).toEqual(["ok", "UsageError", "ok", "ok", "ok"]);
  expect(entries[1]?.result).toMatch(/^UsageError: .*already a token named ci-shop/);
  for (const entry of entries) expect(entry.at >= before).toBe(true);
  // The plaintext of a token is in no entry.
  expect(JSON.stringify(entries)).not.toMatch(/lt_/);
  expect(log.read(new Date(Date.now() + 60_000).toISOString())).toEqual([]);
});

test("a request refused to a token is refused, naming what is missing, and recorded as refused", async () => {
  const { lab, log } = await labAs(CI_SHOP);
  await expect(lab.tokenCreate({ v, name: "mine", scope: "admin" })).rejects.toThrow(
    /^ci-shop may not tokenCreate: it needs the admin scope, and has deploy/,
  );
  await expect(lab.delete({ v, app: "blog", name: "main" })).rejects.toMatchObject({
    status: 403,
    message: expect.stringMatching(/^ci-shop may not delete of app blog: it may touch shop only/),
  });
  expect(
    log.read().map(({ who, what, target, result }) => [who, what, target, result.split(":")[0]]),
  ).toEqual([
    ["ci-shop", "tokenCreate", "mine", "PermissionError"],
    ["ci-shop", "delete", "blog/main", "PermissionError"],
  ]);
});

test("a token limited to some apps lists the experiments and services of those apps only", async () => {
  const experiments = [
    { app: "shop", name: "main" },
    { app: "blog", name: "main" },
    { app: "shop", name: "pr-1" },
  ];
  const services = [
    { app: "blog", experiment: "main", name: "db" },
    { app: "shop", experiment: "main", name: "db" },
  ];
  // Only what listings answer matters here: the embedded laboratory's are real, this one's chosen.
  const listing = {
    list: async () => experiments,
    servicesList: async () => services,
    close: async () => undefined,
  } as unknown as Laboratory;
  const log = new AuditLog(await scratchDir("labtest-audit-"));
  onTestFinished(() => log.close());

  const shop = auditedLaboratory(listing, CI_SHOP, log, "local");
  expect(
    ((await shop.list({ v })) as unknown as ExperimentStatus[]).map((e) => `${e.app}/${e.name}`),
  ).toEqual(["shop/main", "shop/pr-1"]);
  expect((await shop.servicesList({ v })).map((s) => s.app)).toEqual(["shop"]);
  const everyApp = auditedLaboratory(listing, ADMIN, log, "local");
  expect(await everyApp.list({ v })).toHaveLength(3);
  expect(log.read()).toEqual([]);
});

test("a malformed request is the client's error, recorded as such, not a bug of the laboratory", async () => {
  const { lab, log } = await labAs(CI_SHOP);
  // As a request may arrive over a wire: a create without its project.
  const malformed = JSON.parse('{"v": 1, "branch": "main"}') as Parameters<Laboratory["create"]>[0];
  await expect(lab.create(malformed)).rejects.toMatchObject({
    exitCode: 2,
    message: expect.stringMatching(/^the laboratory cannot take this create request\n {2}- project:/),
  });
  expect(log.read().map(({ what, target, result }) => [what, target, result])).toEqual([
    ["create", "", "UsageError: the laboratory cannot take this create request"],
  ]);
});

test("an administrator limited to some apps makes tokens for those apps only", async () => {
  const { lab, log } = await labAs({ name: "shop-admin", scope: "admin", apps: ["shop"] });
  await expect(lab.tokenCreate({ v, name: "everything", scope: "admin" })).rejects.toMatchObject({
    status: 403,
    message: expect.stringMatching(/^shop-admin may not tokenCreate for every app: it may touch shop only/),
  });
  await expect(lab.tokenCreate({ v, name: "blog", scope: "read", apps: ["shop", "blog"] })).rejects.toThrow(
    /^shop-admin may not tokenCreate for blog: it may touch shop only/,
  );
  expect(await lab.tokenCreate({ v, name: "ci-shop", scope: "deploy", apps: ["shop"] })).toMatchObject({
    apps: ["shop"],
  });
  expect((await lab.tokenList({ v })).map((t) => t.name)).toEqual(["ci-shop"]);
  expect(log.read().map((e) => e.result.split(":")[0])).toEqual([
    "PermissionError",
    "PermissionError",
    "ok",
    "ok",
  ]);
});
