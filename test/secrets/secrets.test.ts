import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import { text } from "node:stream/consumers";
import { describe, expect, onTestFinished, test } from "vitest";
import {
  identityFile,
  initAgeIdentity,
  MASK,
  maskSecrets,
  SecretError,
  Secrets,
} from "../../src/secrets/index.js";
import type { StateStore } from "../../src/state/index.js";
import { scratchDir } from "../support/project.js";

/** State holding `values` (absolute key → value). */
function stateWith(values: Record<string, unknown>): StateStore {
  return {
    read: async (keys) => new Map(keys.filter((k) => Object.hasOwn(values, k)).map((k) => [k, values[k]])),
    close: async () => undefined,
  };
}

const ageState = (recipient: string) =>
  stateWith({ "/secrets": { provider: "local", service: "age", options: { recipients: [recipient] } } });

async function failure(work: Promise<unknown>): Promise<SecretError> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SecretError);
  return error as SecretError;
}

const where = (key: string) => `labtest.environment.${key}`;

describe("secrets with age", () => {
  test("a developer encrypts with only the recipient; the laboratory reveals ENC[…] inside values", async () => {
    const laboratory = await scratchDir("labtest-lab-");
    const developer = await scratchDir("labtest-dev-");
    const { recipient, created } = await initAgeIdentity(laboratory);
    expect(created).toBe(true);
    expect(recipient).toMatch(/^age1[a-z0-9]{58}$/);
    expect(await initAgeIdentity(laboratory)).toEqual({ recipient, created: false });
    expect((await stat(identityFile(laboratory))).mode & 0o777).toBe(0o600);

    const atDeveloper = new Secrets({ state: ageState(recipient), home: developer });
    const assignment = await atDeveloper.encryptAssignment("DB_PASSWORD=pa=ss word");
    expect(assignment).toMatch(/^DB_PASSWORD=ENC\[[A-Za-z0-9+/=]+\]$/);
    const whole = await atDeveloper.encryptAssignment("DB_PASSWORD=pa=ss word", true);
    const plain = await atDeveloper.encryptAssignment("no assignment here");
    // The developer's machine has no identity: it cannot read what it encrypted.
    expect((await failure(atDeveloper.reveal({ X: whole }, where))).message).toMatch(/no age identity/);

    const atLaboratory = new Secrets({ state: ageState(recipient), home: laboratory });
    const secret = assignment.slice("DB_PASSWORD=".length);
    expect(
      await atLaboratory.reveal(
        {
          DB_PASSWORD: secret,
          URL: `postgres://app:${secret}@db/app?x=1`,
          WHOLE: whole,
          PLAIN: plain,
          NONE: "as is",
        },
        where,
      ),
    ).toEqual({
      DB_PASSWORD: "pa=ss word",
      URL: "postgres://app:pa=ss word@db/app?x=1",
      WHOLE: "DB_PASSWORD=pa=ss word",
      PLAIN: "no assignment here",
      NONE: "as is",
    });
    // What this process revealed is masked in what it prints.
    expect(maskSecrets("the password is pa=ss word.")).toBe(`the password is ${MASK}.`);
  });

  test("tampered and foreign values, a missing or unknown /secrets: errors that name the key", async () => {
    const laboratory = await scratchDir("labtest-lab-");
    const { recipient } = await initAgeIdentity(laboratory);
    const secrets = new Secrets({ state: ageState(recipient), home: laboratory });
    const good = await secrets.encrypt("value");
    const body = good.slice(4, -1);
    const tampered = `ENC[${body.slice(0, 100)}${body[100] === "A" ? "B" : "A"}${body.slice(101)}]`;
    const tamperedError = await failure(secrets.reveal({ OK: good, API_TOKEN: tampered }, where));
    expect(tamperedError.message).toMatch(/cannot decrypt labtest\.environment\.API_TOKEN/);
    expect(tamperedError.problems[0]?.fix).toMatch(/labtest encrypt/);

    const other = await initAgeIdentity(await scratchDir("labtest-other-"));
    const foreign = await new Secrets({ state: ageState(other.recipient), home: laboratory }).encrypt("x");
    expect((await failure(secrets.reveal({ FOREIGN: foreign }, where))).message).toMatch(
      /cannot decrypt labtest\.environment\.FOREIGN[\s\S]*no identity matched/,
    );

    const missing = await failure(
      new Secrets({ state: stateWith({}), home: laboratory }).reveal({ K: good }, where),
    );
    expect(missing.message).toMatch(/no \/secrets/);
    expect(missing.problems.map((p) => p.where)).toContain("labtest.environment.K");

    const unknown = await failure(
      new Secrets({
        state: stateWith({ "/secrets": { provider: "vault", service: "kv", options: {} } }),
        home: laboratory,
      }).reveal({ K: good }, where),
    );
    expect(unknown.message).toMatch(
      /does not name a secret provider labtest has[\s\S]*local\/age[\s\S]*aws\/kms/,
    );
    expect(unknown.problems.map((p) => p.where)).toContain("labtest.environment.K");

    // Values without ENC[…] need no provider at all.
    expect(
      await new Secrets({ state: stateWith({}), home: laboratory }).reveal({ A: "ENC is not ENC[" }, where),
    ).toEqual({
      A: "ENC is not ENC[",
    });
  });
});

/**
 * A stand-in for AWS KMS's HTTP API (AWS cannot be reached from here): Encrypt and Decrypt of
 * the JSON protocol the SDK speaks, with AES-GCM under one key id. The SDK, its signing and its
 * error handling are the real ones.
 */
async function mockKmsEndpoint(keyId: string): Promise<string> {
  const key = randomBytes(32);
  const server = createServer(async (request, response) => {
    const target = String(request.headers["x-amz-target"]);
    const body = JSON.parse(await text(request)) as Record<string, string>;
    const answer = (status: number, value: unknown) => {
      response.writeHead(status, { "content-type": "application/x-amz-json-1.1" });
      response.end(JSON.stringify(value));
    };
    if (body.KeyId !== keyId)
      return answer(400, { __type: "NotFoundException", message: `Key '${body.KeyId}' does not exist` });
    if (target === "TrentService.Encrypt") {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, iv);
      const sealed = Buffer.concat([
        cipher.update(Buffer.from(body.Plaintext ?? "", "base64")),
        cipher.final(),
      ]);
      return answer(200, {
        KeyId: keyId,
        CiphertextBlob: Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString("base64"),
      });
    }
    if (target === "TrentService.Decrypt") {
      const blob = Buffer.from(body.CiphertextBlob ?? "", "base64");
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, blob.subarray(0, 12));
        decipher.setAuthTag(blob.subarray(12, 28));
        const plain = Buffer.concat([decipher.update(blob.subarray(28)), decipher.final()]);
        return answer(200, { KeyId: keyId, Plaintext: plain.toString("base64") });
      } catch {
        return answer(400, { __type: "InvalidCiphertextException", message: "" });
      }
    }
    return answer(400, { __type: "UnknownOperationException" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  return `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
}

describe("secrets with aws/kms", () => {
  test("against a mock KMS endpoint (AWS is unreachable here): round trip, tampered value, wrong key", async () => {
    const keyId = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const endpoint = await mockKmsEndpoint(keyId);
    const home = await scratchDir("labtest-lab-");
    const kms = (key: string) =>
      new Secrets({
        state: stateWith({
          "/secrets": {
            provider: "aws",
            service: "kms",
            options: { key_id: key, region: "eu-west-1", endpoint },
          },
        }),
        home,
        kms: { credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "example" } },
      });
    const secrets = kms(keyId);
    const encrypted = await secrets.encryptAssignment("TOKEN=t0k=en");
    expect(encrypted).toMatch(/^TOKEN=ENC\[[A-Za-z0-9+/=]+\]$/);
    const value = encrypted.slice("TOKEN=".length);
    expect(await secrets.reveal({ TOKEN: `Bearer ${value}` }, where)).toEqual({ TOKEN: "Bearer t0k=en" });

    const body = value.slice(4, -1);
    const tampered = `ENC[${body.slice(0, 20)}${body[20] === "A" ? "B" : "A"}${body.slice(21)}]`;
    expect((await failure(secrets.reveal({ TOKEN: tampered }, where))).message).toMatch(
      /cannot decrypt labtest\.environment\.TOKEN[\s\S]*aws\/kms: InvalidCiphertextException/,
    );
    expect((await failure(kms("alias/other").reveal({ TOKEN: value }, where))).message).toMatch(
      /cannot decrypt labtest\.environment\.TOKEN[\s\S]*does not exist/,
    );
  });
});
