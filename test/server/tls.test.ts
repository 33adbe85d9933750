import { X509Certificate } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { expect, test } from "vitest";
import { certificateFingerprint, tlsFiles } from "../../src/server/tls.js";
import { runCli } from "../support/cli.js";
import { scratchDir } from "../support/project.js";

test("lab init makes a CA and a server certificate it signed, keeps them, and renews the server's with --force", async () => {
  const home = await scratchDir("labtest-tls-");
  const env = { ...process.env, LABTEST_HOME: home };
  const files = tlsFiles(home);

  const first = await runCli(["lab", "init", "--name", "lab.example.com", "--ip", "192.0.2.7"], home, env);
  expect(first.code, first.stderr).toBe(0);
  const ca = await readFile(files.ca, "utf8");
  const fingerprint = certificateFingerprint(ca);
  expect(fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  expect(first.stdout).toContain(`CA fingerprint: ${fingerprint}`);
  expect(first.stdout).toMatch(/made the laboratory CA[\s\S]*made the server certificate/);

  const caCertificate = new X509Certificate(ca);
  const server = new X509Certificate(await readFile(files.cert, "utf8"));
  expect(caCertificate.ca).toBe(true);
  expect(server.checkIssued(caCertificate) && server.verify(caCertificate.publicKey)).toBe(true);
  for (const name of ["localhost", hostname(), "lab.example.com", "127.0.0.1", "::1", "192.0.2.7"])
    expect(server.checkHost(name) ?? server.checkIP(name), name).toBeTruthy();
  expect(new Date(caCertificate.validTo).getFullYear()).toBeGreaterThanOrEqual(new Date().getFullYear() + 9);
  for (const key of [files.key, files.caKey]) expect((await stat(key)).mode & 0o777).toBe(0o600);

  const again = await runCli(["lab", "init"], home, env);
  expect(again.stdout).toMatch(/kept the laboratory CA[\s\S]*kept the server certificate/);
  expect(await readFile(files.cert, "utf8")).toContain(server.toString().trim());

  const renewed = await runCli(["lab", "init", "--force"], home, env);
  expect(renewed.stdout).toMatch(/kept the laboratory CA[\s\S]*made the server certificate/);
  expect(renewed.stdout).toContain(`CA fingerprint: ${fingerprint}`);
  const next = new X509Certificate(await readFile(files.cert, "utf8"));
  expect(next.serialNumber).not.toBe(server.serialNumber);
  expect(next.checkIssued(caCertificate)).toBe(true);
});

test("serve without TLS files says to run lab init", async () => {
  const home = await scratchDir("labtest-tls-");
  const served = await runCli(["serve", "--listen", "127.0.0.1:0"], home, {
    ...process.env,
    LABTEST_HOME: home,
  });
  expect(served.code).toBe(2);
  expect(served.stderr).toMatch(/no TLS certificate to serve with[\s\S]*fix: run labtest lab init/);
});
